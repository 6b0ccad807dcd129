package cyberarksim

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// fuzzServer returns a server without authentication holding one user and one group.
func fuzzServer(t *testing.T) (*Server, string, string) {
	off := false
	s, err := New(Config{RequireAuth: &off})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Seed(Users, map[string]any{"id": "u1", "userName": "fuzz@example.com",
		"emails": []any{map[string]any{"value": "a@example.com", "type": "work", "primary": true}, map[string]any{"value": "b@example.com", "type": "home"}},
		"name":   map[string]any{"givenName": "F", "familyName": "Z"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Seed(Groups, map[string]any{"id": "g1", "displayName": "Fuzzers", "members": []any{map[string]any{"value": "u1"}}}); err != nil {
		t.Fatal(err)
	}
	return s, "u1", "g1"
}

// checkResponse asserts what every response to untrusted input must satisfy: no 5xx, valid
// JSON, an RFC 7644 error body for errors.
func checkResponse(t *testing.T, rec *httptest.ResponseRecorder, in []byte) {
	if rec.Code >= 500 {
		t.Fatalf("input %q: status %d: %s", in, rec.Code, rec.Body.Bytes())
	}
	if rec.Code == http.StatusNoContent {
		return
	}
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("input %q: response is not JSON: %v", in, err)
	}
	if rec.Code >= 400 && body["status"] == nil {
		t.Fatalf("input %q: error without status: %s", in, rec.Body.Bytes())
	}
}

func FuzzCreateBody(f *testing.F) {
	for _, seed := range []string{
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"a","password":"Str0ngPassw0rd"}`,
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],"userName":"b","password":"Str0ngPassw0rd","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"manager":{"value":"u1"}}}`,
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"c","password":"Str0ngPassw0rd","emails":[{"value":"x","primary":true},{"value":"y","primary":true}]}`,
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:scim:schemas:extension:custom:2.0"],"userName":"d","password":"Str0ngPassw0rd","urn:scim:schemas:extension:custom:2.0":{"a":[1,{"b":null}]}}`,
		`{"userName":null,"name":{"givenName":1},"active":"yes","x509Certificates":[{}]}`,
		`{"schemas":"x"}`, `[]`, `null`, `{"a":`, `{"USERNAME":"x","username":"y"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		s, _, _ := fuzzServer(t)
		for _, path := range []string{"/scim/v2/Users", "/scim/v2/Groups", "/scim/v2/Containers", "/scim/v2/PrivilegedData", "/scim/v2/ContainerPermissions", "/scim/v2/Users/u1"} {
			method := http.MethodPost
			if path == "/scim/v2/Users/u1" {
				method = http.MethodPut
			}
			req := httptest.NewRequest(method, path, bytes.NewReader(body))
			req.Header.Set("Content-Type", scimMediaType)
			checkResponse(t, serveDirect(s, req), body)
		}
		_ = s.Snapshot()
	})
}

func FuzzPatchBody(f *testing.F) {
	for _, seed := range []string{
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"emails[type eq \"work\"].value","value":"z"}]}`,
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"remove","path":"members[value eq \"u1\"]"}]}`,
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","value":{"members":[{"value":"u1"}],"title":"t"}}]}`,
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User","value":{"manager":{"value":"u1"}}}]}`,
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"remove","path":"emails[type eq \"home\"].type"},{"op":"add","path":"emails","value":{"value":"n","primary":true}}]}`,
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"name","value":null}]}`,
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"emails[value co \"]\"].display","value":"]"}]}`,
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"urn:scim:schemas:extension:custom:2.0:x","value":[1,2]}]}`,
		`{"Operations":"x"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		s, uid, gid := fuzzServer(t)
		for _, path := range []string{"/scim/v2/Users/" + uid, "/scim/v2/Groups/" + gid} {
			before := s.Snapshot()
			req := httptest.NewRequest(http.MethodPatch, path, bytes.NewReader(body))
			req.Header.Set("Content-Type", scimMediaType)
			rec := serveDirect(s, req)
			checkResponse(t, rec, body)
			if rec.Code >= 400 {
				after := s.Snapshot()
				b1, _ := json.Marshal(before)
				b2, _ := json.Marshal(after)
				if !bytes.Equal(b1, b2) {
					t.Fatalf("input %q: failed PATCH (%d) changed the store", body, rec.Code)
				}
			}
		}
	})
}
