package provision

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strings"
)

// endpoints are the two bases of the Omada connector: entities (create, read, update, delete)
// and queries (Resolve Object ID, Resolve Reference Property, paging, test query).
type endpoints struct {
	entity, query *url.URL
}

// newEndpoints composes the bases from the Omada parameters. Errors name the field (without the
// "target." prefix).
func newEndpoints(baseURI, entityRoot, queryAddress string, allowHTTP bool) (endpoints, error) {
	if baseURI == "" {
		return endpoints{}, errors.New("baseURI: required")
	}
	base, err := url.Parse(baseURI)
	if err != nil {
		return endpoints{}, fmt.Errorf("baseURI: %q is not a URL: %v", baseURI, err)
	}
	switch {
	case base.Scheme != "https" && base.Scheme != "http", base.Host == "":
		return endpoints{}, fmt.Errorf("baseURI: %q must be an absolute http or https URL", baseURI)
	case base.User != nil:
		return endpoints{}, fmt.Errorf("baseURI: must not carry credentials; use target.auth")
	case base.RawQuery != "" || base.ForceQuery || base.Fragment != "":
		return endpoints{}, fmt.Errorf("baseURI: %q must not have a query or fragment", baseURI)
	case base.Scheme == "http" && !allowHTTP && !isLoopback(base.Hostname()):
		return endpoints{}, fmt.Errorf("baseURI: %q is plain http to a remote host: credentials would travel in clear; use https (or set target.allowHTTP)", baseURI)
	}
	if err := checkRelPath(base.EscapedPath(), true); err != nil {
		return endpoints{}, fmt.Errorf("baseURI: %w", err)
	}
	e := endpoints{entity: base, query: base}
	if entityRoot != "" {
		if e.entity, err = joinBase(base, entityRoot); err != nil {
			return endpoints{}, fmt.Errorf("entityRoot: %w", err)
		}
	}
	e.query = e.entity
	if queryAddress != "" {
		if e.query, err = joinBase(base, queryAddress); err != nil {
			return endpoints{}, fmt.Errorf("queryAddress: %w", err)
		}
	}
	return e, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// joinBase appends a relative path (Omada's entity root or query address) to base.
func joinBase(base *url.URL, rel string) (*url.URL, error) {
	if u, err := url.Parse(rel); err != nil || u.Scheme != "" || u.Host != "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%q must be a relative path appended to target.baseURI, without scheme, host, query or fragment", rel)
	}
	rel = strings.Trim(rel, "/")
	if err := checkRelPath(rel, false); err != nil {
		return nil, err
	}
	return withPath(base, rel), nil
}

// withPath returns base with the escaped relative path appended.
func withPath(base *url.URL, escapedRel string) *url.URL {
	u := *base
	p := strings.TrimRight(base.EscapedPath(), "/") + "/" + escapedRel
	u.Path, _ = url.PathUnescape(p) // checkRelPath proved it unescapes
	u.RawPath = p
	u.RawQuery, u.ForceQuery, u.Fragment = "", false, ""
	return &u
}

// checkRelPath makes sure an escaped path can neither escape its base nor be reinterpreted:
// every segment is validly escaped, none is empty, "." or ".." (also when escaped), and only
// characters allowed in a path segment (RFC 3986 pchar) appear raw.
func checkRelPath(p string, absolute bool) error {
	if absolute {
		p = strings.Trim(p, "/")
	}
	if p == "" {
		if absolute {
			return nil
		}
		return errors.New("path is empty")
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" {
			return fmt.Errorf("path %q has an empty segment", p)
		}
		for i := 0; i < len(seg); i++ {
			if !isPChar(seg[i]) {
				return fmt.Errorf("path %q has %q unescaped; escape ids with provision.ResourcePath", p, seg[i])
			}
		}
		raw, err := url.PathUnescape(seg)
		if err != nil {
			return fmt.Errorf("path %q is not validly escaped: %v", p, err)
		}
		if raw == "." || raw == ".." {
			return fmt.Errorf("path %q has a %q segment", p, raw)
		}
	}
	return nil
}

// isPChar reports the bytes RFC 3986 allows raw in a path segment (plus '%' for escapes).
func isPChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-._~!$&'()*+,;=:@%", c) >= 0
}

// ResourcePath joins a resource and optional ids into a request path, escaping each id as one
// path segment: ResourcePath("ContainerPermissions", "Safe A:jdoe") is
// "ContainerPermissions/Safe%20A:jdoe". Ids are opaque: a '/' in an id stays inside its segment.
func ResourcePath(resource string, ids ...string) string {
	var b strings.Builder
	b.WriteString(url.PathEscape(resource))
	for _, id := range ids {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(id))
	}
	return b.String()
}

// url builds the URL of a request path relative to the entity base (or the query base when
// search is true), with the query string encoded by encodeQuery.
func (e endpoints) url(search bool, rel string, q url.Values) (*url.URL, error) {
	if err := checkRelPath(rel, false); err != nil {
		return nil, err
	}
	base := e.entity
	if search {
		base = e.query
	}
	u := withPath(base, rel)
	u.RawQuery = encodeQuery(q)
	return u, nil
}

// encodeQuery encodes parameters sorted by key, spaces as %20 rather than '+': RFC 3986 servers
// do not all read '+' as a space, and filters are full of spaces.
func encodeQuery(q url.Values) string {
	if len(q) == 0 {
		return ""
	}
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		for _, v := range q[k] {
			if b.Len() > 0 {
				b.WriteByte('&')
			}
			b.WriteString(queryEscape(k))
			b.WriteByte('=')
			b.WriteString(queryEscape(v))
		}
	}
	return b.String()
}

func queryEscape(s string) string { return strings.ReplaceAll(url.QueryEscape(s), "+", "%20") }

// splitTestQuery splits a test query ("Users?filter=...") into its path and parameters.
func splitTestQuery(q string) (string, url.Values, error) {
	p, rawQuery, _ := strings.Cut(strings.TrimLeft(q, "/"), "?")
	if strings.Contains(p, "://") {
		return "", nil, fmt.Errorf("%q must be relative to the query address, e.g. Users?count=1", q)
	}
	if err := checkRelPath(p, false); err != nil {
		return "", nil, fmt.Errorf("%q: %v", q, err)
	}
	vals, err := url.ParseQuery(rawQuery)
	if err != nil {
		return "", nil, fmt.Errorf("%q has an invalid query string: %v", q, err)
	}
	return p, vals, nil
}
