package provision

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/ohler55/ojg/jp"
)

// Resolve finds the id of the resource matching every condition: Omada's Resolve Object ID
// (isKey properties) and Resolve Reference Property (referenceLookupProperty), as
// GET {query base}/{resource}?filter=a eq "v" and b eq "w". The id is read at RootResourcePath
// + ".id". Zero results: found is false. More than one: an *Error of class Permanent
// ("ambiguous"). With an IDCache the answer is cached under CacheKey(match); misses are never
// cached.
func (c *Client) Resolve(ctx context.Context, resource string, match []Match) (id string, found bool, err error) {
	if err := ValidateMatch(match); err != nil {
		return "", false, invalidMatch(resource, err)
	}
	key := CacheKey(match)
	if c.cfg.IDCache != nil {
		if id, ok := c.cfg.IDCache.Get(ctx, resource, key); ok {
			return id, true, nil
		}
	}
	id, found, err = c.lookup(ctx, resource, match)
	if err == nil && found && c.cfg.IDCache != nil {
		c.cfg.IDCache.Put(ctx, resource, key, id)
	}
	return id, found, err
}

// Remember records in the IDCache that match identifies id in resource, so that the next Resolve
// of match needs no query: after a create (the POST answered the id) or a rename (the object moved
// to a new key, reconcile.Plan.Rekey: Forget the old key, Remember the new one). It is a no-op
// without an IDCache, with an empty id, and for a match Resolve would refuse. Cache failures are
// misses, as everywhere: Remember only saves a later query.
func (c *Client) Remember(ctx context.Context, resource string, match []Match, id string) {
	if c.cfg.IDCache == nil || id == "" || ValidateMatch(match) != nil {
		return
	}
	c.cfg.IDCache.Put(ctx, resource, CacheKey(match), id)
}

// ResolveFresh is Resolve without trusting the IDCache: it always queries the target, then
// corrects the cache. A hit replaces a missing or different cached id; a miss drops the cached
// entry, conditionally where the cache supports it (only while it still holds the id read before
// the query, so that a fresher id another worker wrote meanwhile survives). An error leaves the
// cache as it was. Use it where a cached id may be stale and a wrong id would do harm, e.g. to
// check a key before deleting by it. Without an IDCache it is Resolve.
func (c *Client) ResolveFresh(ctx context.Context, resource string, match []Match) (id string, found bool, err error) {
	if err := ValidateMatch(match); err != nil {
		return "", false, invalidMatch(resource, err)
	}
	key := CacheKey(match)
	var cached string
	var had bool
	if c.cfg.IDCache != nil {
		cached, had = c.cfg.IDCache.Get(ctx, resource, key)
	}
	id, found, err = c.lookup(ctx, resource, match)
	switch {
	case err != nil || c.cfg.IDCache == nil:
	case found && (!had || cached != id):
		c.cfg.IDCache.Put(ctx, resource, key, id)
	case !found && had:
		c.Forget(ctx, resource, match, cached)
	}
	return id, found, err
}

// invalidMatch is the error of a lookup that can't be sent: a config error, never retried.
func invalidMatch(resource string, err error) *Error {
	return &Error{Class: ClassConfig, Method: http.MethodGet, Path: resource, Detail: fmt.Sprintf("resolve %s: %v", resource, err)}
}

// lookup queries the target, bypassing the cache.
func (c *Client) lookup(ctx context.Context, resource string, match []Match) (string, bool, error) {
	filter := Filter(match)
	resp, err := c.Do(ctx, Request{Method: http.MethodGet, Path: ResourcePath(resource), Query: url.Values{"filter": {filter}}, Search: true})
	if err != nil {
		return "", false, err
	}
	id, found, err := readLookup(resp.Body, c.root, c.cfg.RootResourcePath)
	if err != nil {
		return "", false, &Error{Class: ClassPermanent, Method: http.MethodGet, Path: ResourcePath(resource), Status: resp.Status,
			Detail: fmt.Sprintf("resolve %s with filter %s: %v", resource, filter, err)}
	}
	return id, found, nil
}

// readLookup reads a query answer: the id of the resource at root, whether there is one, and
// an error when the answer is not JSON, holds several resources or a resource without id.
func readLookup(body []byte, root jp.Expr, rootText string) (string, bool, error) {
	doc, err := decodeJSON(body)
	if err != nil {
		return "", false, fmt.Errorf("answer is not JSON: %v", err)
	}
	if top, ok := doc.(map[string]any); ok {
		n := -1
		if v, ok := asInt(top["totalResults"]); ok {
			n = v
		}
		if rs, ok := top["Resources"].([]any); ok && len(rs) > n {
			n = len(rs)
		}
		if n > 1 {
			return "", false, fmt.Errorf("ambiguous: %d resources match; the key must identify one object", n)
		}
	}
	hits := root.Get(doc)
	if len(hits) == 0 || hits[0] == nil {
		return "", false, nil
	}
	obj, ok := hits[0].(map[string]any)
	if !ok {
		return "", false, fmt.Errorf("%s is not an object", rootText)
	}
	switch id := obj["id"].(type) {
	case string:
		if id != "" {
			return id, true, nil
		}
	case json.Number:
		return id.String(), true, nil
	}
	return "", false, fmt.Errorf("the resource at %s has no id", rootText)
}

// Forget drops the cached id of a lookup: after the object was deleted (staleID ""), or when
// staleID answered 404 (then only while the cache still holds staleID).
func (c *Client) Forget(ctx context.Context, resource string, match []Match, staleID string) {
	if c.cfg.IDCache == nil {
		return
	}
	key := CacheKey(match)
	if cd, ok := c.cfg.IDCache.(conditionalDeleter); ok && staleID != "" {
		cd.DeleteIf(ctx, resource, key, staleID)
		return
	}
	c.cfg.IDCache.Delete(ctx, resource, key)
}

// ByKey resolves the id of the object with the given key and calls fn with it. When fn fails
// with ClassNotFound the id was stale: it is dropped from the cache, the key is resolved once more
// from the target and fn retried with the fresh id. It returns the id last used. When no object
// has the key, the error is an *Error of class NotFound and fn is not called.
func (c *Client) ByKey(ctx context.Context, resource string, match []Match, fn func(ctx context.Context, id string) error) (string, error) {
	id, found, err := c.Resolve(ctx, resource, match)
	if err != nil {
		return "", err
	}
	if !found {
		return "", c.notFound(resource, match)
	}
	err = fn(ctx, id)
	if ClassOf(err) != ClassNotFound {
		return id, err
	}
	c.Forget(ctx, resource, match, id)
	fresh, found, rerr := c.lookup(ctx, resource, match)
	switch {
	case rerr != nil:
		return id, rerr
	case !found:
		return id, c.notFound(resource, match)
	case fresh == id:
		return id, err // the object exists but the request still 404s: report it as it is
	}
	if c.cfg.IDCache != nil {
		c.cfg.IDCache.Put(ctx, resource, CacheKey(match), fresh)
	}
	return fresh, fn(ctx, fresh)
}

func (c *Client) notFound(resource string, match []Match) *Error {
	return &Error{Class: ClassNotFound, Method: http.MethodGet, Path: ResourcePath(resource),
		Detail: fmt.Sprintf("no %s matches %s", resource, Filter(match))}
}

// Get reads one resource by id. A missing one is an *Error of class NotFound. Links in the
// answer (meta.location, $ref) are data only: the connector never follows them.
func (c *Client) Get(ctx context.Context, resource, id string) (map[string]any, error) {
	resp, err := c.Do(ctx, Request{Method: http.MethodGet, Path: ResourcePath(resource, id)})
	if err != nil {
		return nil, err
	}
	doc, err := decodeJSON(resp.Body)
	obj, ok := doc.(map[string]any)
	if err != nil || !ok {
		return nil, &Error{Class: ClassPermanent, Method: http.MethodGet, Path: ResourcePath(resource, id), Status: resp.Status,
			Detail: "answer is not a JSON object"}
	}
	return obj, nil
}

// List reads one page of a resource (startIndex from 1). count is capped at MaxPageSize (1000
// for CyberArk); 0 asks for a full page. Missing itemsPerPage is tolerated.
func (c *Client) List(ctx context.Context, resource string, startIndex, count int) (*ListPage, error) {
	startIndex = max(startIndex, 1)
	if c.cfg.MaxPageSize > 0 && (count <= 0 || count > c.cfg.MaxPageSize) {
		count = c.cfg.MaxPageSize
	}
	if count <= 0 {
		count = 100
	}
	q := url.Values{"startIndex": {strconv.Itoa(startIndex)}, "count": {strconv.Itoa(count)}}
	resp, err := c.Do(ctx, Request{Method: http.MethodGet, Path: ResourcePath(resource), Query: q, Search: true})
	if err != nil {
		return nil, err
	}
	fail := func(detail string) error {
		return &Error{Class: ClassPermanent, Method: http.MethodGet, Path: ResourcePath(resource), Status: resp.Status, Detail: detail}
	}
	doc, err := decodeJSON(resp.Body)
	top, ok := doc.(map[string]any)
	if err != nil || !ok {
		return nil, fail("list answer is not a JSON object")
	}
	page := &ListPage{StartIndex: startIndex}
	if rs, ok := top["Resources"].([]any); ok {
		for i, r := range rs {
			m, ok := r.(map[string]any)
			if !ok {
				return nil, fail(fmt.Sprintf("Resources[%d] is not an object", i))
			}
			page.Resources = append(page.Resources, m)
		}
	}
	var okN bool
	if page.TotalResults, okN = asInt(top["totalResults"]); !okN {
		page.TotalResults = startIndex - 1 + len(page.Resources)
	}
	if v, ok := asInt(top["startIndex"]); ok && v > 0 {
		page.StartIndex = v
	}
	if page.ItemsPerPage, okN = asInt(top["itemsPerPage"]); !okN {
		page.ItemsPerPage = len(page.Resources)
	}
	return page, nil
}

// decodeJSON decodes with numbers kept as json.Number (ids and counts stay exact).
func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// asInt reads a JSON number (or a numeric string, which some targets send).
func asInt(v any) (int, bool) {
	switch n := v.(type) {
	case json.Number:
		i, err := strconv.Atoi(n.String())
		return i, err == nil
	case string:
		i, err := strconv.Atoi(n)
		return i, err == nil
	case float64:
		return int(n), true
	}
	return 0, false
}
