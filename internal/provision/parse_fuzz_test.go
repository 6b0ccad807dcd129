package provision

import (
	"net/http"
	"testing"
	"time"

	"github.com/ohler55/ojg/jp"
)

// FuzzReadLookup: any query answer yields an id, a miss or an error, never a panic, and an id
// only when exactly one resource came back.
func FuzzReadLookup(f *testing.F) {
	for _, seed := range []string{
		`{"totalResults":1,"Resources":[{"id":"2819c223"}]}`,
		`{"totalResults":0,"Resources":[]}`,
		`{"totalResults":2,"Resources":[{"id":"a"},{"id":"b"}]}`,
		`{"Resources":[{"id":12345678901234567890}]}`,
		`{"Resources":[{"noid":true}]}`, `{"Resources":[null]}`, `{"Resources":"x"}`, `[1,2]`, `null`, `{`, ``,
		`{"totalResults":"1","Resources":[{"id":""}]}`,
	} {
		f.Add(seed, DefaultRootResourcePath)
	}
	f.Add(`{"data":{"items":[{"id":"x"}]}}`, "$.data.items[0]")
	f.Fuzz(func(t *testing.T, body, path string) {
		root, err := jp.ParseString(path)
		if err != nil {
			return
		}
		id, found, err := readLookup([]byte(body), root, path)
		if err != nil && (found || id != "") {
			t.Fatalf("error %v with id %q found %v", err, id, found)
		}
		if found && id == "" {
			t.Fatal("found without an id")
		}
	})
}

// FuzzParseRetryAfter: bounded, never negative.
func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"", "0", "120", "-1", "Wed, 21 Oct 2015 07:28:00 GMT", "99999999999999999999", "1.5", " 3 "} {
		f.Add(s)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		d := parseRetryAfter(v, now)
		if d < 0 || d > 24*time.Hour {
			t.Fatalf("parseRetryAfter(%q) = %s", v, d)
		}
	})
}

// FuzzStatusError: any error answer becomes a classified *Error with bounded, valid detail.
func FuzzStatusError(f *testing.F) {
	f.Add(409, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"409","scimType":"uniqueness","detail":"taken"}`, "application/scim+json")
	f.Add(500, "<html>oops</html>", "text/html")
	f.Add(400, "\xff\xfe plain", "text/plain")
	f.Fuzz(func(t *testing.T, code int, body, ct string) {
		if code < 300 || code > 599 {
			return
		}
		resp := &http.Response{StatusCode: code, Header: http.Header{"Content-Type": {ct}, "Retry-After": {body}}}
		e := statusError("GET", "Users", resp, []byte(body), "")
		if e.Class == ClassNone || e.Status != code || len(e.Detail) > 510 {
			t.Fatalf("bad error %#v", e)
		}
		_ = e.Error()
	})
}
