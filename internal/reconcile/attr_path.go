package reconcile

import (
	"errors"
	"fmt"
	"strings"
)

// attrPath is a property's target path parsed into document keys.
//
//	name.givenName                      segs [name givenName]            arr -1
//	emails[].value                      segs [emails value]              arr 0
//	roles[] (or roles with multiValued) segs [roles]                     arr 0 (array of simple values)
//	urn:...:2.0:User:manager.value      segs [urn:...:2.0:User manager value]  urn set
//
// An extension attribute's schema URN is everything up to the last ":" (URNs contain dots and
// colons); the body nests the attribute under the URN as RFC 7643 §3.3 does.
type attrPath struct {
	raw  string
	urn  string
	segs []string
	arr  int // index in segs of the array segment; -1 when the path crosses no array
}

func parseAttrPath(s string, multiValued bool) (attrPath, error) {
	p := attrPath{raw: s, arr: -1}
	if s == "" {
		return p, errors.New("empty path")
	}
	if strings.TrimSpace(s) != s {
		return p, errors.New("path has leading or trailing spaces")
	}
	rest := s
	if len(s) > 4 && strings.EqualFold(s[:4], "urn:") {
		i := strings.LastIndexByte(s, ':')
		p.urn, rest = s[:i], s[i+1:]
		if strings.Count(p.urn, ":") < 2 {
			return p, fmt.Errorf("%q: an extension path is <schema URN>:<attribute>, e.g. urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", s)
		}
		if rest == "" {
			return p, fmt.Errorf("%q: no attribute after the schema URN", s)
		}
		p.segs = append(p.segs, p.urn)
	}
	for _, seg := range strings.Split(rest, ".") {
		name, isArr := strings.CutSuffix(seg, "[]")
		if name == "" {
			return p, fmt.Errorf("%q: empty attribute name (a path is names joined by dots, e.g. name.givenName or emails[].value)", s)
		}
		if i := strings.IndexAny(name, "[]:\"\\ \t\r\n"); i >= 0 {
			return p, fmt.Errorf("%q: character %q is not allowed in attribute name %q", s, name[i], name)
		}
		if isArr {
			if p.arr >= 0 {
				return p, fmt.Errorf("%q: at most one [] per path", s)
			}
			p.arr = len(p.segs)
		}
		p.segs = append(p.segs, name)
	}
	if multiValued && p.arr < 0 {
		p.arr = len(p.segs) - 1
	}
	return p, nil
}

// isArray: the path goes through an array (a multi-valued attribute).
func (p attrPath) isArray() bool { return p.arr >= 0 }

// primitive: the array holds simple values (roles[]) rather than objects (emails[].value).
func (p attrPath) primitive() bool { return p.arr == len(p.segs)-1 }

// arraySegs are the keys leading to the array, the array included.
func (p attrPath) arraySegs() []string { return p.segs[:p.arr+1] }

// elemSegs are the keys inside one array element.
func (p attrPath) elemSegs() []string { return p.segs[p.arr+1:] }

// scimPath renders segs as an RFC 7644 attribute path: urn:...:User:manager.value or name.givenName.
func scimPath(urn string, segs []string) string {
	if urn != "" && len(segs) > 0 && segs[0] == urn {
		return urn + ":" + strings.Join(segs[1:], ".")
	}
	return strings.Join(segs, ".")
}

func (p attrPath) scim() string      { return scimPath(p.urn, p.segs) }
func (p attrPath) scimArray() string { return scimPath(p.urn, p.arraySegs()) }

// groupKey identifies the parent array for multivalue grouping.
func (p attrPath) groupKey() string { return strings.Join(p.arraySegs(), "\x00") }
