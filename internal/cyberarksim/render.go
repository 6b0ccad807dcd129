package cyberarksim

import (
	"encoding/json"
	"net/url"
	"strconv"
	"time"
)

// timeLayout is how meta.created and meta.lastModified are written: UTC with milliseconds.
const timeLayout = "2006-01-02T15:04:05.000Z"

func formatTime(unixNano int64) string {
	return time.Unix(0, unixNano).UTC().Format(timeLayout)
}

// location is the link to a resource: canonical /scim/v2/<endpoint>/<id> in the generic profile;
// in the CyberArk profile /Scim/v2/<segment>/<id>, with the singular "Group" for Groups. Clients
// must never build requests from these links (the CyberArk ones answer 404 here, as paths are
// case-sensitive).
func (s *Server) location(base string, rt *resourceType, id string) string {
	if s.cfg.Generic {
		return base + "/scim/v2/" + rt.endpoint + "/" + url.PathEscape(id)
	}
	return base + "/Scim/v2/" + rt.cyberArkSegment + "/" + url.PathEscape(id)
}

// discoveryLocation is the link to a discovery resource such as ServiceProviderConfig.
func (s *Server) discoveryLocation(base, path string) string {
	if s.cfg.Generic {
		return base + "/scim/v2/" + path
	}
	return base + "/Scim/" + path
}

// resourceMap builds the full representation of rec as GET returns it before projection:
// stored attributes, schemas, id, derived attributes (Group.members with display and $ref,
// User.groups, Container.privilegedData) and meta. The password is never included. The caller
// holds s.mu (read or write).
func (s *Server) resourceMap(c *collection, rec *record, base string) map[string]any {
	rt := c.rt
	m := decodeDoc(rec.doc)
	schemas := []any{rt.core.id}
	for _, ext := range rt.extensions {
		if _, ok := m[ext.id]; ok {
			schemas = append(schemas, ext.id)
		}
	}
	m["schemas"] = schemas
	m["id"] = rec.id
	switch rt {
	case groupType:
		if rec.members.len() > 0 {
			m["members"] = s.memberValues(rec, base)
		}
	case userType:
		if groups := s.db.groupsOf(rec.id); len(groups) > 0 {
			vals := make([]any, 0, len(groups))
			for _, gid := range groups {
				g := s.db.cols[Groups].byID[gid]
				vals = append(vals, map[string]any{
					"value": gid, "display": g.display, "type": "direct",
					"$ref": s.location(base, groupType, gid),
				})
			}
			m["groups"] = vals
		}
	case containerType:
		pd := s.db.cols[PrivilegedData]
		var vals []any
		pd.indexOn("container.value").equal(foldCase(rec.id), func(r *record) bool {
			vals = append(vals, map[string]any{
				"value": r.id, "display": r.display, "$ref": s.location(base, privilegedDataType, r.id),
			})
			return true
		})
		if len(vals) > 0 {
			m["privilegedData"] = vals
		}
	}
	m["meta"] = map[string]any{
		"resourceType": rt.name,
		"created":      formatTime(rec.created),
		"lastModified": formatTime(rec.modified),
		"location":     s.location(base, rt, rec.id),
		"version":      `W/"` + strconv.FormatUint(rec.version, 10) + `"`,
	}
	return m
}

// memberValues renders a Group's members in the order they were added.
func (s *Server) memberValues(group *record, base string) []any {
	ids := group.members.list()
	vals := make([]any, 0, len(ids))
	for _, id := range ids {
		kind, r := s.db.memberKind(id)
		if r == nil {
			continue
		}
		rt := userType
		if kind == "Group" {
			rt = groupType
		}
		vals = append(vals, map[string]any{
			"value": id, "display": r.display, "type": kind, "$ref": s.location(base, rt, id),
		})
	}
	return vals
}

// renderResource encodes rec after applying the projection.
func (s *Server) renderResource(c *collection, rec *record, base string, proj *projection) []byte {
	m := s.resourceMap(c, rec, base)
	if proj != nil {
		m = proj.apply(m)
	}
	b, _ := json.Marshal(m)
	return b
}

// listResponse encodes an RFC 7644 §3.4.2 ListResponse from already encoded resources.
func listResponse(total, startIndex int, resources []json.RawMessage) []byte {
	if resources == nil {
		resources = []json.RawMessage{}
	}
	b, _ := json.Marshal(struct {
		Schemas      []string          `json:"schemas"`
		TotalResults int               `json:"totalResults"`
		StartIndex   int               `json:"startIndex"`
		ItemsPerPage int               `json:"itemsPerPage"`
		Resources    []json.RawMessage `json:"Resources"`
	}{[]string{listResponseURN}, total, startIndex, len(resources), resources})
	return b
}
