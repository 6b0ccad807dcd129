package cyberarksim

import (
	"encoding/json"
	"net/http"
	"strings"
)

// Discovery endpoints (RFC 7644 §4): ServiceProviderConfig, ResourceTypes and Schemas. They take
// no filter: one answers 403 as §4 asks.

func rejectFilter(r *http.Request) error {
	if r.URL.Query().Has("filter") {
		return newSCIMError(http.StatusForbidden, "", "discovery endpoints do not support filter")
	}
	return nil
}

func writeJSONValue(w http.ResponseWriter, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	writeSCIMJSON(w, http.StatusOK, b)
	return nil
}

func (s *Server) serveServiceProviderConfig(w http.ResponseWriter, r *http.Request) error {
	if err := rejectFilter(r); err != nil {
		return err
	}
	schemes := []any{map[string]any{
		"type": "oauthbearertoken", "name": "OAuth Bearer Token", "primary": true,
		"description": "Authentication scheme using the OAuth Bearer Token Standard",
	}}
	if s.cfg.BasicAuth {
		schemes = append(schemes, map[string]any{
			"type": "httpbasic", "name": "HTTP Basic",
			"description": "Authentication scheme using the HTTP Basic Standard with the OAuth client credentials",
		})
	}
	spc := map[string]any{
		"schemas":               []any{"urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"},
		"patch":                 map[string]any{"supported": true},
		"bulk":                  map[string]any{"supported": false, "maxOperations": 1, "maxPayloadSize": 0},
		"filter":                map[string]any{"supported": true, "maxResults": maxCount},
		"changePassword":        map[string]any{"supported": false},
		"sort":                  map[string]any{"supported": false},
		"etag":                  map[string]any{"supported": false},
		"authenticationSchemes": schemes,
		"meta": map[string]any{
			"resourceType": "ServiceProviderConfig",
			"location":     s.discoveryLocation(s.base(r), "ServiceProviderConfig"),
		},
	}
	if s.cfg.Generic {
		spc["bulk"] = map[string]any{"supported": false, "maxOperations": 0, "maxPayloadSize": 0}
		spc["changePassword"] = map[string]any{"supported": true}
	}
	return writeJSONValue(w, spc)
}

func (s *Server) serveResourceTypes(w http.ResponseWriter, r *http.Request, id string) error {
	if err := rejectFilter(r); err != nil {
		return err
	}
	base := s.base(r)
	if id != "" {
		for _, rt := range s.served {
			if rt.name == id {
				return writeJSONValue(w, rt.toJSON(s.discoveryLocation(base, "ResourceTypes/"+rt.name)))
			}
		}
		return notFound("no resource type %q", id)
	}
	var list []json.RawMessage
	for _, rt := range s.served {
		b, _ := json.Marshal(rt.toJSON(s.discoveryLocation(base, "ResourceTypes/"+rt.name)))
		list = append(list, b)
	}
	writeSCIMJSON(w, http.StatusOK, listResponse(len(list), 1, list))
	return nil
}

// servedSchemas lists the schemas of the served resource types, each once.
func (s *Server) servedSchemas() []*schema {
	var out []*schema
	seen := map[string]bool{}
	for _, rt := range s.served {
		for _, sch := range append([]*schema{rt.core}, rt.extensions...) {
			if !seen[sch.id] {
				seen[sch.id] = true
				out = append(out, sch)
			}
		}
	}
	return out
}

func (s *Server) serveSchemas(w http.ResponseWriter, r *http.Request, id string) error {
	if err := rejectFilter(r); err != nil {
		return err
	}
	base := s.base(r)
	if id != "" {
		for _, sch := range s.servedSchemas() {
			if strings.EqualFold(sch.id, id) {
				return writeJSONValue(w, sch.toJSON(s.discoveryLocation(base, "Schemas/"+sch.id)))
			}
		}
		return notFound("no schema %q", id)
	}
	var list []json.RawMessage
	for _, sch := range s.servedSchemas() {
		b, _ := json.Marshal(sch.toJSON(s.discoveryLocation(base, "Schemas/"+sch.id)))
		list = append(list, b)
	}
	writeSCIMJSON(w, http.StatusOK, listResponse(len(list), 1, list))
	return nil
}
