package cyberarksim

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// maxCount is the largest page: CyberArk's ServiceProviderConfig says filter.maxResults 1000.
const maxCount = 1000

// routeSCIM dispatches a SCIM request that passed faults and authentication.
func (s *Server) routeSCIM(w http.ResponseWriter, r *http.Request) {
	if err := s.dispatchSCIM(w, r); err != nil {
		se := asSCIMError(err)
		if se.status >= 500 {
			s.log.Error().Err(err).Str("method", r.Method).Str("path", r.URL.Path).Msg("internal error")
		}
		writeSCIMError(w, se)
	}
}

// asSCIMError turns any error into a SCIM error response; errors that are not *scimError are
// bugs and answer 500.
func asSCIMError(err error) *scimError {
	var se *scimError
	if errors.As(err, &se) {
		return se
	}
	return newSCIMError(http.StatusInternalServerError, "", "internal error: %v", err)
}

func methodNotAllowed(method string, allow ...string) *scimError {
	e := newSCIMError(http.StatusMethodNotAllowed, "", "method %s is not allowed here (allowed: %s)", method, strings.Join(allow, ", "))
	return e.withHeader("Allow", strings.Join(allow, ", "))
}

func (s *Server) dispatchSCIM(w http.ResponseWriter, r *http.Request) error {
	if !acceptOK(r.Header.Get("Accept")) {
		return newSCIMError(http.StatusNotAcceptable, "", "Accept must admit %s or application/json", scimMediaType)
	}
	_, rest, _ := scimPrefix(r.URL.EscapedPath())
	segs := strings.Split(rest, "/")
	if len(segs) == 2 && segs[1] == "" {
		segs = segs[:1] // trailing slash
	}
	if len(segs) > 2 || segs[0] == "" {
		return notFound("no SCIM endpoint at %s", r.URL.Path)
	}
	var id string
	if len(segs) == 2 {
		var err error
		if id, err = url.PathUnescape(segs[1]); err != nil {
			return notFound("malformed resource id in %s", r.URL.Path)
		}
	}
	switch segs[0] {
	case "ServiceProviderConfig":
		if r.Method != http.MethodGet {
			return methodNotAllowed(r.Method, http.MethodGet)
		}
		if id != "" {
			return notFound("no SCIM endpoint at %s", r.URL.Path)
		}
		return s.serveServiceProviderConfig(w, r)
	case "ResourceTypes":
		if r.Method != http.MethodGet {
			return methodNotAllowed(r.Method, http.MethodGet)
		}
		return s.serveResourceTypes(w, r, id)
	case "Schemas":
		if r.Method != http.MethodGet {
			return methodNotAllowed(r.Method, http.MethodGet)
		}
		return s.serveSchemas(w, r, id)
	}
	c := s.collection(segs[0])
	if c == nil {
		return notFound("no SCIM endpoint at %s", r.URL.Path)
	}
	switch {
	case id == "":
		switch r.Method {
		case http.MethodGet:
			return s.serveList(w, r, c)
		case http.MethodPost:
			return s.serveCreate(w, r, c)
		}
		return methodNotAllowed(r.Method, http.MethodGet, http.MethodPost)
	case id == ".search":
		if r.Method != http.MethodPost {
			return methodNotAllowed(r.Method, http.MethodPost)
		}
		return s.serveSearch(w, r, c)
	}
	switch r.Method {
	case http.MethodGet:
		return s.serveGet(w, r, c, id)
	case http.MethodPut:
		return s.serveReplace(w, r, c, id)
	case http.MethodPatch:
		if c.rt.patch {
			return s.servePatch(w, r, c, id)
		}
	case http.MethodDelete:
		return s.serveDelete(w, c, id)
	}
	allow := []string{http.MethodGet, http.MethodPut, http.MethodDelete}
	if c.rt.patch {
		allow = []string{http.MethodGet, http.MethodPut, http.MethodPatch, http.MethodDelete}
	}
	return methodNotAllowed(r.Method, allow...)
}

// collection returns the collection of a served endpoint, or nil.
func (s *Server) collection(endpoint string) *collection {
	for _, rt := range s.served {
		if rt.endpoint == endpoint {
			return s.db.cols[endpoint]
		}
	}
	return nil
}

// readBody reads and decodes a JSON object request body (numbers kept as json.Number).
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) (map[string]any, error) {
	ct := r.Header.Get("Content-Type")
	if !mediaTypeOK(ct) {
		return nil, newSCIMError(http.StatusUnsupportedMediaType, "", "Content-Type must be %s or application/json, not %q", scimMediaType, ct)
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, newSCIMError(http.StatusRequestEntityTooLarge, "", "request body exceeds %d bytes", s.cfg.MaxBodyBytes)
		}
		return nil, badRequest(scimInvalidSyntax, "reading the request body failed")
	}
	return decodeBody(data)
}

// decodeBody decodes a JSON object, rejecting empty bodies, other JSON values and trailing data.
func decodeBody(data []byte) (map[string]any, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, badRequest(scimInvalidSyntax, "request body is empty; a JSON object is expected")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, badRequest(scimInvalidSyntax, "request body is not valid JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, badRequest(scimInvalidSyntax, "request body has data after the JSON object")
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, badRequest(scimInvalidSyntax, "request body must be a JSON object, not %s", jsonKind(v))
	}
	return m, nil
}

// projectionOf is the projection r's query asks an answer of c's resources in (attributes,
// excludedAttributes).
func projectionOf(r *http.Request, c *collection) (*projection, error) {
	q := r.URL.Query()
	return parseProjection(c.rt, q.Get("attributes"), q.Get("excludedAttributes"))
}

// readWrite reads a write's body and the projection its answer is asked in.
func (s *Server) readWrite(w http.ResponseWriter, r *http.Request, c *collection) (map[string]any, *projection, error) {
	body, err := s.readBody(w, r)
	if err != nil {
		return nil, nil, err
	}
	proj, err := projectionOf(r, c)
	if err != nil {
		return nil, nil, err
	}
	return body, proj, nil
}

// update makes change to the resource id under the lock, and answers with the resource as it
// then stands.
func (s *Server) update(w http.ResponseWriter, r *http.Request, c *collection, id string, proj *projection, change func(rec *record, base string) error) error {
	base := s.base(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := c.byID[id]
	if rec == nil {
		return notFound("%s %q not found", c.rt.name, id)
	}
	if err := change(rec, base); err != nil {
		return err
	}
	writeSCIMJSON(w, http.StatusOK, s.renderResource(c, rec, base, proj))
	return nil
}

func (s *Server) serveGet(w http.ResponseWriter, r *http.Request, c *collection, id string) error {
	proj, err := projectionOf(r, c)
	if err != nil {
		return err
	}
	s.mu.RLock()
	rec := c.byID[id]
	var body []byte
	if rec != nil {
		body = s.renderResource(c, rec, s.base(r), proj)
	}
	s.mu.RUnlock()
	if rec == nil {
		return notFound("%s %q not found", c.rt.name, id)
	}
	writeSCIMJSON(w, http.StatusOK, body)
	return nil
}

func (s *Server) serveCreate(w http.ResponseWriter, r *http.Request, c *collection) error {
	body, proj, err := s.readWrite(w, r, c)
	if err != nil {
		return err
	}
	base := s.base(r)
	s.mu.Lock()
	rec, err := s.createResource(c, body, modeCreate)
	var out []byte
	if err == nil {
		out = s.renderResource(c, rec, base, proj)
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	w.Header().Set("Location", s.location(base, c.rt, rec.id))
	writeSCIMJSON(w, http.StatusCreated, out)
	return nil
}

func (s *Server) serveReplace(w http.ResponseWriter, r *http.Request, c *collection, id string) error {
	body, proj, err := s.readWrite(w, r, c)
	if err != nil {
		return err
	}
	n, err := normalizeResource(c.rt, body, modeReplace)
	if err != nil {
		return err
	}
	return s.update(w, r, c, id, proj, func(rec *record, _ string) error { return s.updateResource(c, rec, n, modeReplace) })
}

func (s *Server) servePatch(w http.ResponseWriter, r *http.Request, c *collection, id string) error {
	body, proj, err := s.readWrite(w, r, c)
	if err != nil {
		return err
	}
	ops, err := parsePatchRequest(c.rt, body)
	if err != nil {
		return err
	}
	return s.update(w, r, c, id, proj, func(rec *record, base string) error { return s.patchResource(c, rec, ops, base) })
}

// patchResource applies PATCH operations atomically: on any error nothing changes. The caller
// holds s.mu.
func (s *Server) patchResource(c *collection, rec *record, ops []patchOp, base string) error {
	if done, err := s.patchMembersFast(c, rec, ops); done || err != nil {
		return err
	}
	work := s.resourceMap(c, rec, base)
	delete(work, "meta")
	delete(work, "schemas")
	if err := applyPatch(c.rt, work, ops); err != nil {
		return err
	}
	n, err := normalizeResource(c.rt, work, modePatched)
	if err != nil {
		return err
	}
	return s.updateResource(c, rec, n, modePatched)
}

func (s *Server) serveDelete(w http.ResponseWriter, c *collection, id string) error {
	s.mu.Lock()
	rec := c.byID[id]
	if rec != nil {
		s.deleteResource(c, rec)
	}
	s.mu.Unlock()
	if rec == nil {
		return notFound("%s %q not found", c.rt.name, id)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// listQuery is a parsed list or search request.
type listQuery struct {
	filter     *compiledFilter // nil: every resource
	startIndex int             // 1-based
	count      int
	proj       *projection
}

func (s *Server) serveList(w http.ResponseWriter, r *http.Request, c *collection) error {
	q := r.URL.Query()
	lq, err := parseListQuery(c.rt, q.Get("filter"), q.Has("filter"), q.Get("startIndex"), q.Get("count"), q.Get("attributes"), q.Get("excludedAttributes"))
	if err != nil {
		return err
	}
	writeSCIMJSON(w, http.StatusOK, s.runList(c, lq, s.base(r)))
	return nil
}

// serveSearch is POST /<Resource>/.search (RFC 7644 §3.4.3).
func (s *Server) serveSearch(w http.ResponseWriter, r *http.Request, c *collection) error {
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	params := map[string]string{}
	var haveFilter, haveSchemas bool
	for k, v := range body {
		switch name := foldCase(k); name {
		case "schemas":
			arr, _ := v.([]any)
			for _, e := range arr {
				if sv, _ := e.(string); strings.EqualFold(sv, searchRequestURN) {
					haveSchemas = true
				}
			}
		case "filter", "startindex", "count":
			params[name] = scalarText(v)
			haveFilter = haveFilter || name == "filter"
		case "attributes", "excludedattributes":
			arr, ok := v.([]any)
			if !ok {
				return badRequest(scimInvalidValue, "%s must be an array of attribute names", k)
			}
			names := make([]string, 0, len(arr))
			for _, e := range arr {
				names = append(names, scalarText(e))
			}
			params[name] = strings.Join(names, ",")
		case "sortby", "sortorder":
		default:
			return badRequest(scimInvalidSyntax, "unknown SearchRequest member %q", k)
		}
	}
	if !haveSchemas {
		return badRequest(scimInvalidSyntax, "schemas must be [%q]", searchRequestURN)
	}
	lq, err := parseListQuery(c.rt, params["filter"], haveFilter, params["startindex"], params["count"], params["attributes"], params["excludedattributes"])
	if err != nil {
		return err
	}
	writeSCIMJSON(w, http.StatusOK, s.runList(c, lq, s.base(r)))
	return nil
}

func parseListQuery(rt *resourceType, filter string, haveFilter bool, startIndex, count, attributes, excluded string) (*listQuery, error) {
	lq := &listQuery{startIndex: 1, count: maxCount}
	if haveFilter {
		f, err := ParseFilter(filter)
		if err != nil {
			return nil, badRequest(scimInvalidFilter, "filter %q: %v", filter, err)
		}
		cf, err := compileFilter(rt, f)
		if err != nil {
			return nil, badRequest(scimInvalidFilter, "filter %q: %v", filter, err)
		}
		lq.filter = cf
	}
	if startIndex != "" {
		n, err := strconv.Atoi(startIndex)
		if err != nil {
			return nil, badRequest(scimInvalidValue, "startIndex must be an integer, not %q", startIndex)
		}
		lq.startIndex = max(n, 1) // RFC 7644 §3.4.2.4: values below 1 mean 1
	}
	if count != "" {
		n, err := strconv.Atoi(count)
		if err != nil {
			return nil, badRequest(scimInvalidValue, "count must be an integer, not %q", count)
		}
		lq.count = min(max(n, 0), maxCount) // negative means 0; larger than maxResults is clamped
	}
	proj, err := parseProjection(rt, attributes, excluded)
	if err != nil {
		return nil, err
	}
	lq.proj = proj
	return lq, nil
}

// runList executes a list query under the read lock and encodes the ListResponse.
func (s *Server) runList(c *collection, lq *listQuery, base string) []byte {
	s.mu.RLock()
	defer s.mu.RUnlock()
	total, page := s.query(c, lq.filter, lq.startIndex, lq.count, base)
	resources := make([]json.RawMessage, len(page))
	for i, rec := range page {
		resources[i] = s.renderResource(c, rec, base, lq.proj)
	}
	return listResponse(total, lq.startIndex, resources)
}

// query returns the number of resources matching f and the page [startIndex, startIndex+count)
// of them in creation order. Equality and prefix comparisons on indexed attributes, id and
// Group/User membership are answered from indexes; other filters scan. The caller holds s.mu.
func (s *Server) query(c *collection, f *compiledFilter, startIndex, count int, base string) (int, []*record) {
	first := startIndex - 1
	var page []*record
	if f == nil {
		c.order.page(first, count, func(r *record) { page = append(page, r) })
		return c.order.live, page
	}
	if cands, used, ok := s.candidates(c, f); ok {
		sort.Slice(cands, func(i, j int) bool { return cands[i].seq < cands[j].seq })
		total := 0
		for _, r := range cands {
			if !s.verify(c, r, f, used, base) {
				continue
			}
			if total >= first && len(page) < count {
				page = append(page, r)
			}
			total++
		}
		return total, page
	}
	total := 0
	c.order.each(func(r *record) bool {
		if s.verify(c, r, f, -1, base) {
			if total >= first && len(page) < count {
				page = append(page, r)
			}
			total++
		}
		return true
	})
	return total, page
}

// verify checks the terms of f other than the one the index answered.
func (s *Server) verify(c *collection, r *record, f *compiledFilter, answered int, base string) bool {
	if len(f.terms) == 1 && answered == 0 {
		return true
	}
	m := s.resourceMap(c, r, base)
	for i := range f.terms {
		if i != answered && !f.terms[i].matches(m) {
			return false
		}
	}
	return true
}

// candidates picks the most selective term an index can answer and returns its records
// (deduplicated, unordered) and the term's position.
func (s *Server) candidates(c *collection, f *compiledFilter) ([]*record, int, bool) {
	best, bestRank := -1, 99
	for i := range f.terms {
		if rank := s.indexRank(c, &f.terms[i]); rank < bestRank {
			best, bestRank = i, rank
		}
	}
	if best < 0 {
		return nil, -1, false
	}
	t := &f.terms[best]
	var out []*record
	switch {
	case t.path.attr == idAttr:
		if r := c.byID[t.needle]; r != nil {
			out = append(out, r)
		}
	case c.rt == groupType && t.path.name == "members":
		for _, gid := range s.db.groupsOf(t.needle) {
			out = append(out, c.byID[gid])
		}
	case c.rt == userType && t.path.name == "groups":
		if g := s.db.cols[Groups].byID[t.needle]; g != nil {
			for _, id := range g.members.list() {
				if u := c.byID[id]; u != nil {
					out = append(out, u)
				}
			}
		}
	default:
		ix := c.index(t.path)
		seen := map[*record]bool{}
		add := func(r *record) bool {
			if !seen[r] {
				seen[r] = true
				out = append(out, r)
			}
			return true
		}
		switch t.op {
		case opEq:
			ix.equal(t.needle, add)
		case opSw:
			ix.prefix(t.needle, add)
		default:
			ix.each(func(e indexEntry) bool {
				if stringOpMatches(t.op, e.key, t.needle) {
					add(e.rec)
				}
				return true
			})
		}
	}
	return out, best, true
}

// indexRank says how well an index answers t: 0 id, 1 equality, 2 prefix, 3 index scan;
// 99 when no index applies.
func (s *Server) indexRank(c *collection, t *compiledTerm) int {
	switch {
	case t.path.attr == idAttr && t.op == opEq:
		return 0
	case t.op == opEq && t.path.ext == nil && t.path.subName == "value" &&
		(c.rt == groupType && t.path.name == "members" || c.rt == userType && t.path.name == "groups"):
		return 1
	case t.implied || !t.leaf.isString():
		return 99
	case c.index(t.path) == nil:
		return 99
	case t.op == opEq:
		return 1
	case t.op == opSw:
		return 2
	}
	return 3
}
