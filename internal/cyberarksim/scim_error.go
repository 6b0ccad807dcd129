package cyberarksim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
)

// Media type of every SCIM response (RFC 7644 §3.1).
const scimMediaType = "application/scim+json"

// URNs of the SCIM protocol messages (RFC 7644 §3.12, §3.4.2, §3.5.2, §3.4.3).
const (
	errorURN         = "urn:ietf:params:scim:api:messages:2.0:Error"
	listResponseURN  = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
	patchOpURN       = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	searchRequestURN = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
)

// scimType values defined by RFC 7644 §3.12, table 9.
const (
	scimInvalidFilter = "invalidFilter"
	scimUniqueness    = "uniqueness"
	scimMutability    = "mutability"
	scimInvalidSyntax = "invalidSyntax"
	scimInvalidPath   = "invalidPath"
	scimNoTarget      = "noTarget"
	scimInvalidValue  = "invalidValue"
)

// scimError is an RFC 7644 §3.12 error response. It is also the error type every internal step of
// request handling returns, so a handler can write whatever failed without translating it.
type scimError struct {
	status   int
	scimType string // empty where the RFC defines none (401, 404, 409 without uniqueness, 429, 5xx)
	detail   string
	header   http.Header // extra response headers (Retry-After, Allow, WWW-Authenticate)
}

func (e *scimError) Error() string {
	if e.scimType != "" {
		return fmt.Sprintf("scim %d %s: %s", e.status, e.scimType, e.detail)
	}
	return fmt.Sprintf("scim %d: %s", e.status, e.detail)
}

func newSCIMError(status int, scimType, format string, args ...any) *scimError {
	return &scimError{status: status, scimType: scimType, detail: fmt.Sprintf(format, args...)}
}

func badRequest(scimType, format string, args ...any) *scimError {
	return newSCIMError(http.StatusBadRequest, scimType, format, args...)
}

func notFound(format string, args ...any) *scimError {
	return newSCIMError(http.StatusNotFound, "", format, args...)
}

func conflict(format string, args ...any) *scimError {
	return newSCIMError(http.StatusConflict, scimUniqueness, format, args...)
}

// withHeader returns e with one more response header.
func (e *scimError) withHeader(key, value string) *scimError {
	if e.header == nil {
		e.header = http.Header{}
	}
	e.header.Add(key, value)
	return e
}

// errorBody is the JSON shape of an RFC 7644 §3.12 error; status is a string, as the RFC's examples
// show and CyberArk answers.
type errorBody struct {
	Schemas  []string `json:"schemas"`
	Status   string   `json:"status"`
	ScimType string   `json:"scimType,omitempty"`
	Detail   string   `json:"detail,omitempty"`
}

// writeSCIMError writes e as an RFC 7644 error response.
func writeSCIMError(w http.ResponseWriter, e *scimError) {
	for k, vs := range e.header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	body, _ := json.Marshal(errorBody{
		Schemas:  []string{errorURN},
		Status:   strconv.Itoa(e.status),
		ScimType: e.scimType,
		Detail:   e.detail,
	})
	w.Header().Set("Content-Type", scimMediaType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(e.status)
	_, _ = w.Write(body)
}

// writeSCIMJSON writes a successful SCIM response with an already encoded body.
func writeSCIMJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", scimMediaType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
