package provision

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

// PageInfo is what a ListResponse says about itself (RFC 7644 §3.4.2), as ListEach read it.
type PageInfo struct {
	// TotalResults is as the target reported it; -1 when it sent none.
	TotalResults int
	// StartIndex is as the target reported it, else the one asked for.
	StartIndex int
	// ItemsPerPage is as the target reported it; -1 when it sent none.
	ItemsPerPage int
	// Count is the number of resources the page held.
	Count int
	// Asked is the count that was asked for (after capping at MaxPageSize).
	Asked int
	// Bytes is the size of the answer's body.
	Bytes int
}

// ListEach reads one page of a resource (startIndex from 1, count capped at MaxPageSize as List
// does) through the limiter, the breaker, authentication and retries, and calls fn with each
// resource in page order, decoding one resource at a time so that a page of large groups is never
// held twice in memory. An error of fn stops the page and is returned as it is. Missing
// totalResults and itemsPerPage are tolerated (reported as -1).
func (c *Client) ListEach(ctx context.Context, resource string, startIndex, count int, fn func(map[string]any) error) (PageInfo, error) {
	startIndex = max(startIndex, 1)
	if c.cfg.MaxPageSize > 0 && (count <= 0 || count > c.cfg.MaxPageSize) {
		count = c.cfg.MaxPageSize
	}
	if count <= 0 {
		count = 100
	}
	info := PageInfo{TotalResults: -1, StartIndex: startIndex, ItemsPerPage: -1, Asked: count}
	q := url.Values{"startIndex": {strconv.Itoa(startIndex)}, "count": {strconv.Itoa(count)}}
	resp, err := c.Do(ctx, Request{Method: http.MethodGet, Path: ResourcePath(resource), Query: q, Search: true})
	if err != nil {
		return info, err
	}
	info.Bytes = len(resp.Body)
	fail := func(detail string) error {
		return &Error{Class: ClassPermanent, Method: http.MethodGet, Path: ResourcePath(resource), Status: resp.Status,
			Detail: fmt.Sprintf("list %s from %d: %s", resource, startIndex, detail)}
	}
	dec := json.NewDecoder(bytes.NewReader(resp.Body))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return info, fail("the answer is not a JSON object")
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return info, fail(err.Error())
		}
		name, _ := tok.(string)
		switch name {
		case "Resources":
			if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
				if tok == nil && err == nil {
					continue // "Resources": null
				}
				return info, fail("Resources is not an array")
			}
			for dec.More() {
				var m map[string]any
				if err := dec.Decode(&m); err != nil || m == nil {
					return info, fail(fmt.Sprintf("Resources[%d] is not an object", info.Count))
				}
				info.Count++
				if err := fn(m); err != nil {
					return info, err
				}
			}
			if _, err := dec.Token(); err != nil {
				return info, fail(err.Error())
			}
		case "totalResults", "startIndex", "itemsPerPage":
			var v any
			if err := dec.Decode(&v); err != nil {
				return info, fail(err.Error())
			}
			n, ok := asInt(v)
			switch {
			case !ok:
			case name == "totalResults":
				info.TotalResults = n
			case name == "itemsPerPage":
				info.ItemsPerPage = n
			case n > 0:
				info.StartIndex = n
			}
		default:
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return info, fail(err.Error())
			}
		}
	}
	return info, nil
}
