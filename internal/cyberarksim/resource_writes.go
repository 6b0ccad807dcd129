package cyberarksim

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"unicode"
)

// prepared is what the per-type rules derive from a normalized body.
type prepared struct {
	id      string
	display string
	members []string // Groups: validated member ids
}

// createResource validates body and stores it as a new resource. The caller holds s.mu.
func (s *Server) createResource(c *collection, body map[string]any, mode writeMode) (*record, error) {
	n, err := normalizeResource(c.rt, body, mode)
	if err != nil {
		return nil, err
	}
	p, err := s.prepare(c, n, nil, mode)
	if err != nil {
		return nil, err
	}
	if c.byID[p.id] != nil {
		return nil, conflict("%s %q already exists", c.rt.name, p.id)
	}
	if err := checkUnique(c, n.doc, nil); err != nil {
		return nil, err
	}
	now := s.now().UnixNano()
	rec := &record{id: p.id, created: now, modified: now, version: 1, display: p.display}
	if n.password != nil {
		rec.password = *n.password
	}
	s.db.insert(c, rec, n.doc)
	if c.rt == groupType {
		rec.members = newMemberList()
		s.db.setMembers(rec, p.members)
	}
	s.logCreate(c, rec, mode)
	return rec, nil
}

// updateResource replaces rec's attributes with a normalized body (PUT, or the result of PATCH).
// Nothing changes, not even meta.version, when the body equals what is stored. The caller holds
// s.mu.
func (s *Server) updateResource(c *collection, rec *record, n *normalizedResource, mode writeMode) error {
	if mode == modeReplace && n.id != "" && n.id != rec.id {
		return badRequest(scimMutability, "id is immutable: the body says %q, the URL %q", n.id, rec.id)
	}
	p, err := s.prepare(c, n, rec, mode)
	if err != nil {
		return err
	}
	if err := checkUnique(c, n.doc, rec); err != nil {
		return err
	}
	before := beforeWrite(rec)
	changed := !bytes.Equal(encodeDoc(n.doc), rec.doc)
	if n.password != nil && *n.password != rec.password {
		rec.password = *n.password
		changed = true
	}
	if rec.members != nil && !sameMembers(rec.members, p.members) {
		s.db.setMembers(rec, p.members)
		changed = true
	}
	if !changed {
		return nil
	}
	s.db.replaceDoc(c, rec, decodeDoc(rec.doc), n.doc)
	rec.display = p.display
	s.touch(rec)
	s.logUpdate(c, rec, mode, before)
	return nil
}

// touch records a modification of rec.
func (s *Server) touch(rec *record) {
	rec.modified = s.now().UnixNano()
	rec.version++
}

func sameMembers(m *memberList, ids []string) bool {
	if m.len() != len(ids) {
		return false
	}
	for _, id := range ids {
		if !m.has(id) {
			return false
		}
	}
	return true
}

// deleteResource deletes rec and what depends on it: memberships, safe memberships of a deleted
// user or group, and the members and accounts of a deleted safe. The caller holds s.mu.
func (s *Server) deleteResource(c *collection, rec *record) {
	s.logDelete(c, rec)
	switch c.rt {
	case userType:
		name, _ := decodeDoc(rec.doc)["userName"].(string)
		s.deleteWhere(ContainerPermissions, "user.value", foldCase(name))
	case groupType:
		name, _ := decodeDoc(rec.doc)["displayName"].(string)
		s.deleteWhere(ContainerPermissions, "group.value", foldCase(name))
	case containerType:
		s.deleteWhere(ContainerPermissions, "container.value", foldCase(rec.id))
		s.deleteWhere(PrivilegedData, "container.value", foldCase(rec.id))
	}
	for _, gid := range s.db.remove(c, rec) {
		if g := s.db.cols[Groups].byID[gid]; g != nil {
			s.touch(g)
			s.logMembers(s.db.cols[Groups], g, "CASCADE", nil, []string{rec.id})
		}
	}
}

// deleteWhere deletes every record of endpoint whose indexed path has key.
func (s *Server) deleteWhere(endpoint, path, key string) {
	c := s.db.cols[endpoint]
	var doomed []*record
	c.indexOn(path).equal(key, func(r *record) bool {
		doomed = append(doomed, r)
		return true
	})
	for _, r := range doomed {
		s.deleteResource(c, r)
	}
}

// checkUnique rejects a document whose server-unique attributes (userName, Group displayName,
// Container name) are taken by another record, case-insensitively.
func checkUnique(c *collection, doc map[string]any, self *record) error {
	for i, p := range c.paths {
		if p.leaf().uniqueness != uniqServer {
			continue
		}
		for _, k := range c.keysOf(i, doc) {
			if other := c.indexes[i].first(k); other != nil && other != self {
				v, _ := p.values(doc, false)[0].(string)
				return conflict("%s %q is already in use by another %s", p.String(), v, c.rt.name)
			}
		}
	}
	return nil
}

// prepare applies the per-type rules to a normalized body: assigns or derives the id, fills
// defaults and checks references to other resources. old is nil on create.
func (s *Server) prepare(c *collection, n *normalizedResource, old *record, mode writeMode) (prepared, error) {
	var p prepared
	switch {
	case old != nil:
		p.id = old.id
	case mode == modeSeed && n.id != "":
		p.id = n.id
	}
	var err error
	switch c.rt {
	case userType:
		err = s.prepareUser(n, &p, old, mode)
	case groupType:
		err = s.prepareGroup(n, &p)
	case containerType:
		err = s.prepareContainer(n, &p, old, mode)
	case containerPermissionType:
		err = s.prepareContainerPermission(n, &p, old)
	case privilegedDataType:
		err = s.preparePrivilegedData(n, &p, old)
	}
	if err != nil {
		return prepared{}, err
	}
	if p.id == "" {
		p.id = newUUID()
	}
	return p, nil
}

func (s *Server) prepareUser(n *normalizedResource, p *prepared, old *record, mode writeMode) error {
	if !s.cfg.Generic {
		switch {
		case n.password == nil && mode == modeCreate:
			return badRequest(scimInvalidValue, "password is required: CyberArk creates users only with a password")
		case n.password != nil && mode != modeSeed:
			if err := checkPasswordPolicy(*n.password); err != nil {
				return err
			}
		}
	}
	if ent, ok := n.doc[enterpriseURN].(map[string]any); ok {
		if mgr, ok := ent["manager"].(map[string]any); ok {
			// Only a manager being set is checked: a user whose manager left (a dangling reference,
			// as a directory keeps it) can still be changed otherwise.
			if v, ok := mgr["value"].(string); ok && v != managerOf(old) {
				if s.db.cols[Users].byID[v] == nil {
					return badRequest(scimInvalidValue, "%s:manager.value %q is not the id of an existing User", enterpriseURN, v)
				}
				if old != nil && v == old.id {
					return badRequest(scimInvalidValue, "a User cannot be their own manager")
				}
			}
		}
	}
	p.display, _ = n.doc["displayName"].(string)
	if p.display == "" {
		p.display, _ = n.doc["userName"].(string)
	}
	return nil
}

// managerOf is the manager id a stored user holds, "" for none (or no record).
func managerOf(rec *record) string {
	if rec == nil {
		return ""
	}
	ent, _ := decodeDoc(rec.doc)[enterpriseURN].(map[string]any)
	mgr, _ := ent["manager"].(map[string]any)
	v, _ := mgr["value"].(string)
	return v
}

// checkPasswordPolicy applies CyberArk Identity's default password policy: 8 to 64 characters
// with a digit, an upper-case and a lower-case letter. The detail never echoes the password.
func checkPasswordPolicy(pw string) error {
	var digit, upper, lower bool
	n := 0
	for _, r := range pw {
		n++
		digit = digit || unicode.IsDigit(r)
		upper = upper || unicode.IsUpper(r)
		lower = lower || unicode.IsLower(r)
	}
	if n < 8 || n > 64 || !digit || !upper || !lower {
		return badRequest(scimInvalidValue, "password does not meet the password policy: 8 to 64 characters with at least one digit, one upper-case and one lower-case letter")
	}
	return nil
}

func (s *Server) prepareGroup(n *normalizedResource, p *prepared) error {
	p.display, _ = n.doc["displayName"].(string)
	members, err := s.prepareGroupMembers(p.id, n.members)
	p.members = members
	return err
}

// prepareGroupMembers checks that every member reference names an existing User or Group of
// the stated type, other than the group itself, and returns the ids.
func (s *Server) prepareGroupMembers(groupID string, refs []memberRef) ([]string, error) {
	ids := make([]string, 0, len(refs))
	for _, m := range refs {
		if groupID != "" && m.value == groupID {
			return nil, badRequest(scimInvalidValue, "members: a Group cannot be a member of itself")
		}
		kind, _ := s.db.memberKind(m.value)
		if kind == "" {
			return nil, badRequest(scimInvalidValue, "members: no User or Group has id %q", m.value)
		}
		if m.typ != "" && m.typ != kind {
			return nil, badRequest(scimInvalidValue, "members: %q is a %s, not a %s", m.value, kind, m.typ)
		}
		ids = append(ids, m.value)
	}
	return ids, nil
}

// maxSafeName is the longest CyberArk safe name.
const maxSafeName = 28

func (s *Server) prepareContainer(n *normalizedResource, p *prepared, old *record, mode writeMode) error {
	name, _ := n.doc["name"].(string)
	if len([]rune(name)) > maxSafeName || strings.ContainsAny(name, "\\/:*?\"<>|.\t\r\n") || strings.TrimSpace(name) != name {
		return badRequest(scimInvalidValue, "name %q is not a valid safe name: at most %d characters, no leading or trailing spaces, none of \\ / : * ? \" < > | .", name, maxSafeName)
	}
	switch {
	case old != nil && old.id != name:
		return badRequest(scimMutability, "name is immutable: the safe is %q", old.id)
	case mode == modeSeed && p.id != "" && p.id != name:
		return badRequest(scimInvalidValue, "a Container's id is its name: id %q differs from name %q", p.id, name)
	}
	p.id = name
	if _, ok := n.doc["displayName"]; !ok {
		n.doc["displayName"] = name
	}
	p.display, _ = n.doc["displayName"].(string)
	return nil
}

// findContainer resolves a safe reference by id, or by name case-insensitively.
func (s *Server) findContainer(ref string) *record {
	c := s.db.cols[Containers]
	if r := c.byID[ref]; r != nil {
		return r
	}
	return c.indexOn("name").first(foldCase(ref))
}

// containerRef checks the container sub-object of a ContainerPermission or PrivilegedData and
// rewrites its value to the safe's id.
func (s *Server) containerRef(n *normalizedResource) (*record, error) {
	ref, _ := n.doc["container"].(map[string]any)
	v, _ := ref["value"].(string)
	if v == "" {
		return nil, badRequest(scimInvalidValue, "container.value is required (the safe name)")
	}
	safe := s.findContainer(v)
	if safe == nil {
		return nil, badRequest(scimInvalidValue, "container.value %q: no such Container", v)
	}
	ref["value"] = safe.id
	return safe, nil
}

func (s *Server) prepareContainerPermission(n *normalizedResource, p *prepared, old *record) error {
	safe, err := s.containerRef(n)
	if err != nil {
		return err
	}
	user, _ := n.doc["user"].(map[string]any)
	group, _ := n.doc["group"].(map[string]any)
	var member string
	switch {
	case user != nil && group != nil:
		return badRequest(scimInvalidValue, "a ContainerPermission names either a user or a group, not both")
	case user != nil:
		v, _ := user["value"].(string)
		r := s.db.cols[Users].indexOn("userName").first(foldCase(v))
		if r == nil {
			r = s.db.cols[Users].byID[v]
		}
		if r == nil {
			return badRequest(scimInvalidValue, "user.value %q: no User has this userName or id", v)
		}
		member, _ = decodeDoc(r.doc)["userName"].(string)
		user["value"] = member
	case group != nil:
		v, _ := group["value"].(string)
		r := s.db.cols[Groups].indexOn("displayName").first(foldCase(v))
		if r == nil {
			r = s.db.cols[Groups].byID[v]
		}
		if r == nil {
			return badRequest(scimInvalidValue, "group.value %q: no Group has this displayName or id", v)
		}
		member, _ = decodeDoc(r.doc)["displayName"].(string)
		group["value"] = member
	default:
		return badRequest(scimInvalidValue, "a ContainerPermission needs a user or a group with a value")
	}
	if rights, ok := n.doc["rights"].([]any); ok {
		canon := make([]any, 0, len(rights))
		for _, r := range rights {
			right := canonicalRight(r.(string))
			if right == "" {
				return badRequest(scimInvalidValue, "rights: unknown safe permission %q (known: %s)", r, strings.Join(safeRights, ", "))
			}
			if !containsAnyString(canon, right) {
				canon = append(canon, right)
			}
		}
		n.doc["rights"] = canon
	}
	id := safe.id + ":" + member
	if old != nil && id != old.id {
		return badRequest(scimMutability, "the safe and member of a ContainerPermission are immutable (%q would become %q)", old.id, id)
	}
	p.id, p.display = id, id
	return nil
}

func canonicalRight(s string) string {
	for _, r := range safeRights {
		if strings.EqualFold(r, s) {
			return r
		}
	}
	return ""
}

func containsAnyString(list []any, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (s *Server) preparePrivilegedData(n *normalizedResource, p *prepared, old *record) error {
	safe, err := s.containerRef(n)
	if err != nil {
		return err
	}
	name, _ := n.doc["name"].(string)
	var clash bool
	s.db.cols[PrivilegedData].indexOn("container.value").equal(foldCase(safe.id), func(r *record) bool {
		if r != old {
			other, _ := decodeDoc(r.doc)["name"].(string)
			clash = foldCase(other) == foldCase(name)
		}
		return !clash
	})
	if clash {
		return conflict("safe %q already holds an account named %q", safe.id, name)
	}
	if old != nil {
		prev, _ := decodeDoc(old.doc)["container"].(map[string]any)
		if prev["value"] != safe.id {
			return badRequest(scimMutability, "container is immutable: the account is in safe %q", prev["value"])
		}
	}
	if p.id == "" {
		s.pdSeq++
		p.id = fmt.Sprintf("%d_%d", safe.seq, s.pdSeq)
	}
	p.display, _ = n.doc["displayName"].(string)
	if p.display == "" {
		p.display = name
	}
	return nil
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:], b[10:])
	return string(out[:])
}
