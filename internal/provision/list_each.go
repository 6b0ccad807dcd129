package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/scimflow/scimflow/internal/jsonx"
)

// PageInfo is what a ListResponse says about itself (RFC 7644 §3.4.2), as ListRaw read it.
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

// ListRaw reads one page of a resource (startIndex from 1, count capped at MaxPageSize as List
// does) through the limiter, the breaker, authentication and retries, and calls fn with the JSON
// text of each resource (a JSON object, valid until fn returns) in page order: the caller decodes
// only what it needs, and a page of large groups is never held twice in memory. An error of fn
// stops the page and is returned as it is. Missing totalResults and itemsPerPage are tolerated
// (reported as -1); an answer that is not a ListResponse is a permanent error naming the resource,
// the page and what is wrong.
func (c *Client) ListRaw(ctx context.Context, resource string, startIndex, count int, fn func(raw []byte) error) (PageInfo, error) {
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
	var fnErr error // fn's own error, returned as it is
	problem := ""   // what is wrong with the answer, when known before the syntax is
	_, ok := jsonx.Read(resp.Body, func(d *jsontext.Decoder) (struct{}, bool) {
		if d.PeekKind() != '{' {
			problem = "the answer is not a JSON object"
			return struct{}{}, false
		}
		return struct{}{}, jsonx.Members(d, func(token []byte) bool {
			switch name, _ := jsonx.Unquote(token); name {
			case "Resources":
				if d.PeekKind() == 'n' {
					return d.SkipValue() == nil // "Resources": null
				}
				if d.PeekKind() != '[' {
					problem = "Resources is not an array"
					return false
				}
				return jsonx.Elements(d, func() bool {
					if d.PeekKind() != '{' {
						problem = fmt.Sprintf("Resources[%d] is not an object", info.Count)
						return false
					}
					raw, err := d.ReadValue()
					if err != nil {
						return false
					}
					info.Count++
					fnErr = fn(raw)
					return fnErr == nil
				})
			case "totalResults", "startIndex", "itemsPerPage":
				v, ok := jsonx.Value(d)
				if !ok {
					return false
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
				return true
			default:
				return d.SkipValue() == nil
			}
		})
	})
	switch {
	case fnErr != nil:
		return info, fnErr
	case ok:
		return info, nil
	case problem == "":
		problem = syntaxProblem(resp.Body)
	}
	return info, &Error{Class: ClassPermanent, Method: http.MethodGet, Path: ResourcePath(resource), Status: resp.Status,
		Detail: fmt.Sprintf("list %s from %d: %s", resource, startIndex, problem)}
}

// syntaxProblem says where body stops being JSON, as encoding/json reads it.
func syntaxProblem(body []byte) string {
	var v any
	err := json.Unmarshal(body, &v)
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("%v (at byte %d of %d)", se, se.Offset, len(body))
	case err != nil:
		return err.Error()
	}
	return "the answer is not a ListResponse"
}
