package cyberarksim

import (
	"encoding/json"
	"net/url"
	"strconv"
	"time"
)

// timeLayout is how meta.created and meta.lastModified are written: UTC with milliseconds.
const timeLayout = "2006-01-02T15:04:05.000Z"

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

// resourceMap returns the full representation of rec as GET returns it before projection, as a
// fresh map (numbers as json.Number). The caller holds s.mu (read or write).
func (s *Server) resourceMap(c *collection, rec *record, base string) map[string]any {
	return decodeDoc(s.appendResource(nil, c, rec, base))
}

// renderResource encodes rec after applying the projection. The caller holds s.mu.
func (s *Server) renderResource(c *collection, rec *record, base string, proj *projection) []byte {
	if proj != nil {
		return appendJSONValue(nil, proj.apply(s.resourceMap(c, rec, base)))
	}
	return s.appendResource(make([]byte, 0, len(rec.doc)+320), c, rec, base)
}

// appendResource writes the full representation of rec: schemas, id, the stored attributes
// spliced in from the stored JSON without decoding it, the derived attributes (Group.members
// with display and $ref, User.groups, Container.privilegedData) and meta. The password is never
// written. The caller holds s.mu.
func (s *Server) appendResource(b []byte, c *collection, rec *record, base string) []byte {
	rt := c.rt
	b = append(b, `{"schemas":[`...)
	b = appendJSONString(b, rt.core.id)
	for i, ext := range rt.extensions {
		if rec.exts&(1<<i) != 0 {
			b = append(b, ',')
			b = appendJSONString(b, ext.id)
		}
	}
	b = append(b, `],"id":`...)
	b = appendJSONString(b, rec.id)
	if inner := rec.doc[1 : len(rec.doc)-1]; len(inner) > 0 {
		b = append(b, ',')
		b = append(b, inner...)
	}
	switch rt {
	case groupType:
		if rec.members.len() > 0 {
			b = append(b, `,"members":[`...)
			first := true
			for _, id := range rec.members.ids {
				if id == "" {
					continue
				}
				kind, r := s.db.memberKind(id)
				if r == nil {
					continue
				}
				mrt := userType
				if kind == "Group" {
					mrt = groupType
				}
				b = s.appendRef(b, !first, mrt, r, kind, base)
				first = false
			}
			b = append(b, ']')
		}
	case userType:
		if groups := s.db.groupsOf(rec.id); len(groups) > 0 {
			b = append(b, `,"groups":[`...)
			for i, gid := range groups {
				b = s.appendRef(b, i > 0, groupType, s.db.cols[Groups].byID[gid], "direct", base)
			}
			b = append(b, ']')
		}
	case containerType:
		first := true
		s.db.cols[PrivilegedData].indexOn("container.value").equal(foldCase(rec.id), func(r *record) bool {
			if first {
				b = append(b, `,"privilegedData":[`...)
			}
			b = s.appendRef(b, !first, privilegedDataType, r, "", base)
			first = false
			return true
		})
		if !first {
			b = append(b, ']')
		}
	}
	b = append(b, `,"meta":{"resourceType":`...)
	b = appendJSONString(b, rt.name)
	b = append(b, `,"created":"`...)
	b = time.Unix(0, rec.created).UTC().AppendFormat(b, timeLayout)
	b = append(b, `","lastModified":"`...)
	b = time.Unix(0, rec.modified).UTC().AppendFormat(b, timeLayout)
	b = append(b, `","location":`...)
	b = appendJSONString(b, s.location(base, rt, rec.id))
	b = append(b, `,"version":"W/\"`...)
	b = strconv.AppendUint(b, rec.version, 10)
	return append(b, `\""}}`...)
}

// appendRef writes a reference to r as a multi-valued element: value, display, $ref and, when
// typ is not empty, type.
func (s *Server) appendRef(b []byte, comma bool, rt *resourceType, r *record, typ, base string) []byte {
	if comma {
		b = append(b, ',')
	}
	b = append(b, `{"value":`...)
	b = appendJSONString(b, r.id)
	b = append(b, `,"display":`...)
	b = appendJSONString(b, r.display)
	if typ != "" {
		b = append(b, `,"type":`...)
		b = appendJSONString(b, typ)
	}
	b = append(b, `,"$ref":`...)
	b = appendJSONString(b, s.location(base, rt, r.id))
	return append(b, '}')
}

// listResponse encodes an RFC 7644 §3.4.2 ListResponse from already encoded resources, splicing
// them in as they are (they are compact JSON: re-encoding them would cost more than rendering).
func listResponse(total, startIndex int, resources []json.RawMessage) []byte {
	n := 160
	for _, r := range resources {
		n += len(r) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, `{"schemas":[`...)
	b = appendJSONString(b, listResponseURN)
	b = append(b, `],"totalResults":`...)
	b = strconv.AppendInt(b, int64(total), 10)
	b = append(b, `,"startIndex":`...)
	b = strconv.AppendInt(b, int64(startIndex), 10)
	b = append(b, `,"itemsPerPage":`...)
	b = strconv.AppendInt(b, int64(len(resources)), 10)
	b = append(b, `,"Resources":[`...)
	for i, r := range resources {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, r...)
	}
	return append(b, "]}"...)
}
