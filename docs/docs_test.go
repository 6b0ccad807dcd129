package docs_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/pem"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scimflow/scimflow/internal/auth"
	"github.com/scimflow/scimflow/internal/config"
	"github.com/scimflow/scimflow/internal/cyberarksim"
	"github.com/scimflow/scimflow/internal/cyberarksim/simtest"
	"github.com/scimflow/scimflow/internal/events"
	"github.com/scimflow/scimflow/internal/guard"
	"github.com/scimflow/scimflow/internal/pipeline"
	"github.com/scimflow/scimflow/internal/provision"
	"github.com/scimflow/scimflow/internal/reconcile"
)

// How the documentation quotes the program: a message (an error, a log line, a report line, a
// skip reason) is written between backticks, or between double quotes in running text, exactly
// as the program prints it. "…" or "..." stands for the rest of a message, <Name> for a value.
// Each quoted message is listed in quotes below with the code that makes the program say it, so
// a message that changes in the code, or a quote that changes in the docs, fails this test.
// TestEveryQuotedMessageIsChecked finds quotes that look like messages (a colon and four words or
// more) and are not listed yet.

// quote is a message a document quotes, and how to make the program say it.
type quote struct {
	doc  string // path from the repository root
	text string // as the document writes it, inside its backticks or double quotes
	// real runs the code that says it and returns what it said (one or more messages); one must
	// match text.
	real func(t *testing.T) []string
}

var quotes = []quote{
	{"docs/events.md", `invalid event at /data/operation: must be one of Create,Update,Delete,Upsert,AddAssignment,RemoveAssignment (got "Promote")`,
		func(t *testing.T) []string {
			_, err := events.Decode([]byte(`{"specversion":"1.0","id":"x","source":"/hr","type":"identity.user.update",
				"data":{"object":"User","operation":"Promote","key":{"userName":"x"}}}`))
			return errText(err)
		}},
	{"docs/events.md", `invalid event: /data/operation: must be one of Create,Update,Delete,Upsert,AddAssignment,RemoveAssignment (got "Promote"); /type: …`,
		func(t *testing.T) []string {
			// The sample file's malformed event, as `make demo` dead-letters it.
			raw, err := os.ReadFile("../deploy/examples/events.jsonl")
			require.NoError(t, err)
			for _, line := range strings.Split(string(raw), "\n") {
				if strings.Contains(line, `"id": "demo-bad-24"`) {
					_, err := events.Decode([]byte(line))
					return errText(err)
				}
			}
			t.Fatal("deploy/examples/events.jsonl has no demo-bad-24")
			return nil
		}},
	{"docs/connector.md", `target.auth.oauth2.tokenURL: required with mode oauth2`, func(t *testing.T) []string {
		cfg := provision.Config{BaseURI: "https://tenant.example/scim/v2", Auth: auth.Config{Mode: auth.ModeOAuth2,
			OAuth2: auth.OAuth2Config{ClientID: "c", ClientSecret: "s"}}}
		return errText(cfg.Validate())
	}},

	// worker check, one failure each (docs/connector.md, "Check").
	{"docs/connector.md", `HTTP 401 Unauthorized: invalid_client (client authentication failed); the client was not authenticated: check auth.oauth2.clientID and auth.oauth2.clientSecret`,
		check(func(c *provision.Config, _ *httptest.Server) { c.Auth.OAuth2.ClientSecret = "wrong" })},
	{"docs/connector.md", `credentials rejected after a token refresh: check target.auth`, func(t *testing.T) []string {
		// A target that refuses every token: the connector refreshes once, then gives up.
		_, srv := simtest.MustStart(t, cyberarksim.Config{Faults: cyberarksim.Faults{ExpireTokensAfter: time.Nanosecond}})
		c, err := provision.New(targetConfig(srv))
		require.NoError(t, err)
		defer c.Close(context.Background())
		_, _, err = c.Resolve(t.Context(), "Users", []provision.Match{{Attr: "userName", Value: "a"}})
		return errText(err)
	}},
	{"docs/connector.md", `not run: no token`,
		check(func(c *provision.Config, _ *httptest.Server) { c.Auth.OAuth2.ClientSecret = "wrong" })},
	{"docs/connector.md", `HTTP 404 Not Found; no token endpoint at this address: check auth.oauth2.tokenURL`,
		check(func(c *provision.Config, _ *httptest.Server) {
			c.Auth.OAuth2.TokenURL = strings.Replace(c.Auth.OAuth2.TokenURL, "/token/", "/tokens/", 1)
		})},
	{"docs/connector.md", `token request to http://127.0.0.1:1/oauth2/token/scimflow: cannot connect to 127.0.0.1:1: connection refused`,
		check(func(c *provision.Config, _ *httptest.Server) {
			c.BaseURI, c.Auth.OAuth2.TokenURL = "http://127.0.0.1:1/scim/v2", "http://127.0.0.1:1/oauth2/token/scimflow"
		})},
	{"docs/connector.md", `the server offers no TLS version at or above the configured minimum (target.tls.minVersion, 1.2 unless set to 1.3); versions below 1.2 are refused`,
		checkTLS},
	{"docs/connector.md", `test query "Users?filter=userName eq" rejected: HTTP 400 invalidFilter`,
		check(func(c *provision.Config, _ *httptest.Server) { c.TestQuery = "Users?filter=userName eq" })},

	// Planning (docs/datamodel.md): the rules behind the parts of a body, skip reasons and errors.
	{"docs/datamodel.md", `object schemas`, plan(reconcile.OpCreate, "User", nil)},
	{"docs/datamodel.md", `key "userName"`, plan(reconcile.OpCreate, "User", nil)},
	{"docs/datamodel.md", `template CreateRequest`, plan(reconcile.OpCreate, "User", nil)},
	{"docs/datamodel.md", `task mapping "title" (modify, Update; default mapping)`, plan(reconcile.OpUpdate, "User", nil)},
	{"docs/datamodel.md", `PatchOp message (RFC 7644 §3.5.2)`, plan(reconcile.OpUpdate, "User", nil)},
	{"docs/datamodel.md", `JSONPath property "$.added[0].loginId"`, plan(reconcile.OpCreate, "User", nil)},
	{"docs/datamodel.md", `reconciled from current object (GET Users/u1, meta removed)`, plan(reconcile.OpUpdate, "Person", nil)},
	{"docs/datamodel.md", `already in the desired state`, plan(reconcile.OpUpdate, "Person", map[string]any{"title": "Engineer"})},
	{"docs/datamodel.md", `already absent`, planKey(reconcile.OpDelete, "User", "nobody@example.com")},
	{"docs/datamodel.md", `nothing to change`, plan(reconcile.OpUpdate, "User", map[string]any{})},
	{"docs/datamodel.md", `no template`, plan(reconcile.OpCreate, "Ghost", nil)},
	{"docs/datamodel.md", `current object Users/u1`, plan(reconcile.OpUpdate, "Ghost", nil)},
	{"docs/datamodel.md", `plan <Operation> of <Object> <key>: ...`, func(t *testing.T) []string {
		return planChange(t, reconcile.Change{Object: "User", Operation: reconcile.OpUpdate, Key: map[string]any{"nope": "x"}})
	}},
	{"docs/datamodel.md", `models/x.yaml:7: objects[0].properties[1].type: must be one of string,int,long,bool,reference,complex (got "strng")`,
		badModel},
	{"docs/datamodel.md", `models/x.yaml:9: objects[0].taskMappings.Update[1].name: unknown property "titel": did you mean "title"? (object User has userName, title)`,
		badModel},
	{"docs/datamodel.md", `unknown property "titel" of User: did you mean "title"? (properties: ...)`,
		plan(reconcile.OpUpdate, "User", map[string]any{"titel": "CTO"})},
	{"docs/datamodel.md", `nothing to change: members[].value "ghost@example.com" is already absent (no Users where userName eq "ghost@example.com")`,
		func(t *testing.T) []string {
			return planShipped(t, reconcile.Change{Object: "Group", Operation: reconcile.OpRemoveAssignment,
				Key: map[string]any{"displayName": "Eng"}, Attributes: map[string]any{"members[].value": []any{"ghost@example.com"}}})
		}},
	{"docs/datamodel.md", `nothing to send until the referenced objects exist: members[].value "cid@example.com" (no Users where userName eq "cid@example.com") (Plan.FollowUp sets them)`,
		func(t *testing.T) []string {
			return planShipped(t, reconcile.Change{Object: "Group", Operation: reconcile.OpAddAssignment, DeferUnresolved: true,
				Key: map[string]any{"displayName": "Eng"}, Attributes: map[string]any{"members[].value": []any{"cid@example.com"}}})
		}},
	{"docs/datamodel.md", `unexpected EOF`, func(t *testing.T) []string {
		_, err := reconcile.ImportOmada(strings.NewReader(`<object name="SampleUser"><properties>`), "excerpt.xml")
		return errText(err)
	}},

	// Delivery (docs/delivery.md): Consumer.Ready while paused.
	{"docs/delivery.md", `paused since …: <reason>`, func(t *testing.T) []string {
		return formatsIn(t, "../internal/events/consumer.go", "paused since ", "2026-12-03T08:44:13Z")
	}},

	// Dead letters (docs/dlq.md).
	{"docs/dlq.md", `invalid event at /data/key/userName: is not valid UTF-8: byte 0xff at offset <Offset>`, func(t *testing.T) []string {
		raw := []byte(`{"specversion":"1.0","id":"x","source":"/hr","type":"identity.user.update","data":{"object":"User","operation":"Update","key":{"userName":"ab` + "\xff" + `"}}}`)
		_, err := events.Decode(raw)
		return errText(err)
	}},

	// The deletion guard (docs/deletion-guard.md).
	{"docs/deletion-guard.md", `scimflow.yaml:<Line>: deletionGuard.protected[0].pattern: required field is missing`,
		guardConfig("deletionGuard:\n  protected:\n    - {object: User, property: userName}\n")},
	{"docs/deletion-guard.md", `scimflow.yaml:<Line>: deletionGuard.maxPercent: maximum: got 150, want 100`,
		guardConfig("deletionGuard:\n  maxPercent: 150\n")},
	{"docs/deletion-guard.md", `deletion guard: User userName "breakglass-01" matches protected pattern "breakglass-*": never deleted`, func(t *testing.T) []string {
		g, err := guard.New(guard.Config{MaxPercent: guard.NoLimit, Protected: []guard.Pattern{{Object: "User", Property: "userName", Pattern: "breakglass-*"}}}, guard.Options{})
		require.NoError(t, err)
		reason, _ := g.Protected(guard.Change{Object: "User", Operation: reconcile.OpDelete, Key: map[string]any{"userName": "breakglass-01"}})
		return []string{reason}
	}},

	// The simulator (docs/simulator.md).
	{"docs/simulator.md", `Config.TokenTTL …`, func(t *testing.T) []string {
		_, err := cyberarksim.New(cyberarksim.Config{TokenTTL: 1})
		return errText(err)
	}},
	{"docs/simulator.md", `listening on http://127.0.0.1:8080`, func(t *testing.T) []string {
		// cmd/cyberark-sim is a main package: read the format it prints its first line with.
		return formatsIn(t, "../cmd/cyberark-sim/run.go", "listening on ", "http://127.0.0.1:8080")
	}},
	{"docs/simulator.md", `seed Users[1]: …`, func(t *testing.T) []string {
		sim, err := cyberarksim.New(cyberarksim.Config{})
		require.NoError(t, err)
		return errText(sim.Seed("Users", map[string]any{"userName": "a"}, map[string]any{"userName": 42}))
	}},
	{"docs/simulator.md", `password is required…`, func(t *testing.T) []string {
		return simRequest(t, http.MethodPost, "/scim/v2/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"a"}`)
	}},
	{"docs/simulator.md", `Operations[1]: …`, func(t *testing.T) []string {
		sim, srv := simtest.MustStart(t, noAuth())
		require.NoError(t, sim.Seed("Users", map[string]any{"id": "u1", "userName": "a"}))
		return simRequestTo(t, srv, http.MethodPatch, "/scim/v2/Users/u1", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
			"Operations":[{"op":"replace","path":"title","value":"x"},{"op":"frobnicate","path":"title"}]}`)
	}},
}

// TestQuotedMessagesAreWhatTheProgramSays: every listed quote is in its document, and the program
// says it.
func TestQuotedMessagesAreWhatTheProgramSays(t *testing.T) {
	t.Parallel()
	docs := readDocs(t)
	for _, q := range quotes {
		t.Run(q.doc+" "+q.text, func(t *testing.T) {
			t.Parallel()
			d, ok := docs[q.doc]
			require.True(t, ok, "no document %s", q.doc)
			assert.True(t, d.quotes(q.text), "%s no longer quotes %q: update the list in docs_test.go", q.doc, q.text)
			said := q.real(t)
			require.NotEmpty(t, said, "the code said nothing")
			if !slices.ContainsFunc(said, pattern(q.text).MatchString) {
				t.Errorf("%s quotes %q, but the program says:\n  %s", q.doc, q.text, strings.Join(said, "\n  "))
			}
		})
	}
}

// TestEveryQuotedMessageIsChecked: a quote in the docs that looks like a message is in the list
// above, so that it is checked.
func TestEveryQuotedMessageIsChecked(t *testing.T) {
	t.Parallel()
	// Inline code with a colon that is code or notation, not something the program prints.
	notMessages := map[string]bool{
		"*Error{Class: retryable, BreakerOpen: true, RetryAfter: time until the probe}": true,
		"Scimflow-Original-Seq: <IDM_EVENTS seq of the original>":                       true, // a header and what it holds
		`syncWindow: {schedule: "@every 5s", maxWindows: 20}`:                           true, // configuration
	}
	listed := map[string]bool{}
	for _, q := range quotes {
		listed[q.doc+"\x00"+q.text] = true
	}
	for name, d := range readDocs(t) {
		candidates := d.output
		for _, m := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(d.prose, -1) {
			candidates = append(candidates, m[1])
		}
		// Double quotes in running text, outside inline code (where they are JSON or filters).
		text := regexp.MustCompile("`[^`]*`").ReplaceAllString(d.prose, "")
		for _, m := range regexp.MustCompile(`"([^"]{1,160})"`).FindAllStringSubmatch(text, -1) {
			candidates = append(candidates, m[1])
		}
		for _, c := range candidates {
			if !looksLikeMessage(c) || notMessages[c] || listed[name+"\x00"+c] {
				continue
			}
			t.Errorf("%s quotes %q, which looks like a message of the program: add it to the quotes in docs/docs_test.go with the code that says it (or to notMessages)", name, c)
		}
	}
}

// looksLikeMessage: "a problem: its detail", four words or more, not JSON or Go.
func looksLikeMessage(s string) bool {
	return strings.Contains(s, ": ") && len(strings.Fields(s)) >= 4 && !strings.HasPrefix(s, "{") && !strings.ContainsAny(s, "\\")
}

// TestQuotePattern: the matcher accepts the program's text for a quote with elisions and
// placeholders, and refuses a changed message.
func TestQuotePattern(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		quote, said string
		match       bool
	}{
		{"not run: no token", "not run: no token", true},
		{"not run: no token", "skipped: no token", false},
		{"seed Users[1]: …", "seed Users[1]: userName: must be a string", true},
		{"seed Users[1]: …", "seed Users[0]: userName: must be a string", false},
		{"plan <Operation> of <Object> <key>: ...", "plan Update of User nope=x: key \"nope\" is not a key property", true},
		{"plan <Operation> of <Object> <key>: ...", "planning Update of User: failed", false},
		{"invalid event at /data/operation: value must be one of ...", "invalid event: /data/operation: must be one of Create", false},
	} {
		assert.Equal(t, tc.match, pattern(tc.quote).MatchString(tc.said), "%q ~ %q", tc.quote, tc.said)
	}
}

// pattern is the regular expression a quote stands for: literal text, "…" or "..." for any rest,
// <Name> for a value.
func pattern(quote string) *regexp.Regexp {
	var b strings.Builder
	for _, part := range regexp.MustCompile(`…|\.\.\.|<[A-Za-z]+>`).Split(quote, -1) {
		if b.Len() > 0 {
			b.WriteString(".+?")
		}
		b.WriteString(regexp.QuoteMeta(part))
	}
	return regexp.MustCompile(b.String())
}

// document is a document's text made ready for the checks.
type document struct {
	text   string   // everything, runs of white space made one space (quotes wrap across lines)
	prose  string   // the same without fenced code blocks
	output []string // lines of fenced blocks without a language: program output
}

// quotes reports whether the document quotes s: in backticks or double quotes, or as a line of
// program output.
func (d document) quotes(s string) bool {
	return strings.Contains(d.text, "`"+s+"`") || strings.Contains(d.text, `"`+s+`"`) || slices.Contains(d.output, s)
}

// readDocs reads docs/*.md and README.md.
func readDocs(t *testing.T) map[string]document {
	t.Helper()
	files, err := filepath.Glob("*.md")
	require.NoError(t, err)
	files = append(files, "../README.md")
	out := map[string]document{}
	space := regexp.MustCompile(`\s+`)
	for _, f := range files {
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		name := filepath.ToSlash(filepath.Join("docs", f))
		if f == "../README.md" {
			name = "README.md"
		}
		var d document
		var prose []string
		inBlock, isOutput := false, false
		for _, line := range strings.Split(string(raw), "\n") {
			if fence, ok := strings.CutPrefix(strings.TrimSpace(line), "```"); ok {
				if !inBlock {
					inBlock, isOutput = true, fence == ""
				} else {
					inBlock = false
				}
				continue
			}
			switch {
			case !inBlock:
				prose = append(prose, line)
			case isOutput:
				d.output = append(d.output, strings.TrimSpace(line))
			}
		}
		d.text = space.ReplaceAllString(string(raw), " ")
		d.prose = space.ReplaceAllString(strings.Join(prose, "\n"), " ")
		out[name] = d
	}
	return out
}

func errText(err error) []string {
	if err == nil {
		return nil
	}
	var out []string
	out = append(out, err.Error())
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			out = append(out, errText(e)...)
		}
	}
	return out
}

// targetConfig is a connector config for the simulator at srv.
func targetConfig(srv *httptest.Server) provision.Config {
	return provision.Config{
		Profile: provision.ProfileCyberArk,
		BaseURI: srv.URL + "/scim/v2",
		Auth: auth.Config{Mode: auth.ModeOAuth2, OAuth2: auth.OAuth2Config{
			TokenURL: srv.URL + "/oauth2/token/" + cyberarksim.DefaultAppID,
			ClientID: cyberarksim.DefaultClientID, ClientSecret: cyberarksim.DefaultClientSecret, Scopes: []string{"scim"},
		}},
		TestQuery: "Users?count=1",
	}
}

// runCheck runs Check (what `worker check` prints) and returns every step's detail and the error.
func runCheck(t *testing.T, cfg provision.Config) []string {
	t.Helper()
	c, err := provision.New(cfg)
	require.NoError(t, err)
	defer c.Close(context.Background())
	r := c.Check(t.Context())
	var out []string
	for _, s := range r.Steps {
		out = append(out, s.Detail)
	}
	return append(out, errText(r.Err())...)
}

// check runs Check against a fresh simulator with the config changed by mutate.
func check(mutate func(*provision.Config, *httptest.Server)) func(t *testing.T) []string {
	return func(t *testing.T) []string {
		_, srv := simtest.MustStart(t, cyberarksim.Config{})
		cfg := targetConfig(srv)
		mutate(&cfg, srv)
		return runCheck(t, cfg)
	}
}

// checkTLS runs Check against a simulator that speaks TLS 1.1 at most.
func checkTLS(t *testing.T) []string {
	_, srv := simtest.MustStartTLS(t, cyberarksim.Config{}, tls.VersionTLS10, tls.VersionTLS11)
	cfg := targetConfig(srv)
	cfg.TLS.CAFile = filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(cfg.TLS.CAFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600))
	return runCheck(t, cfg)
}

// planModel has the shapes docs/datamodel.md names: a User with a CreateRequest template and a
// JSONPath property, a reconciled Person, and a Ghost whose JSONPath property matches nothing.
const planModel = `objects:
  - name: User
    resource: Users
    schemas: ["urn:ietf:params:scim:schemas:core:2.0:User"]
    properties:
      - {name: userName, isKey: true}
      - {name: title}
      - {name: "$.added[0].loginId"}
    details:
      CreateRequest: '{"added":[{"loginId":"placeholder"}]}'
  - name: Person
    resource: Users
    schemas: ["urn:ietf:params:scim:schemas:core:2.0:User"]
    properties:
      - {name: userName, isKey: true}
      - {name: title}
    details: {ReconcileOnUpdate: true, UpdateMethod: put}
  - name: Ghost
    resource: Users
    schemas: ["urn:ietf:params:scim:schemas:core:2.0:User"]
    properties:
      - {name: userName, isKey: true}
      - {name: "$.nothing.here"}
    details: {ReconcileOnUpdate: true}
`

// plan plans a change of the user u1 (ada@example.com, an Engineer) with attrs (by default a new
// title, and a JSONPath value where one applies).
func plan(op reconcile.Operation, object string, attrs map[string]any) func(t *testing.T) []string {
	return func(t *testing.T) []string {
		if attrs == nil {
			attrs = map[string]any{"title": "CTO"}
			switch {
			case object == "User" && op == reconcile.OpCreate:
				attrs["$.added[0].loginId"] = "ada"
			case object == "Ghost":
				attrs = map[string]any{"$.nothing.here": "x"}
			}
		}
		return planChange(t, reconcile.Change{Object: object, Operation: op, Key: map[string]any{"userName": "ada@example.com"}, Attributes: attrs})
	}
}

// planKey plans a change of the user named userName.
func planKey(op reconcile.Operation, object, userName string) func(t *testing.T) []string {
	return func(t *testing.T) []string {
		return planChange(t, reconcile.Change{Object: object, Operation: op, Key: map[string]any{"userName": userName}})
	}
}

// guardConfig loads a worker configuration with extra appended and returns its errors, one per line.
func guardConfig(extra string) func(t *testing.T) []string {
	return func(t *testing.T) []string {
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, "model.yaml"), []byte("objects: []\n"), 0o600))
		file := filepath.Join(dir, "scimflow.yaml")
		cfg := "target:\n  baseURI: https://tenant.example/scim/v2\nmodel: model.yaml\n" + extra
		require.NoError(t, os.WriteFile(file, []byte(cfg), 0o600))
		_, err := config.Load(file, config.Options{})
		var out []string
		for _, e := range errText(err) {
			for _, l := range strings.Split(e, "\n") {
				out = append(out, strings.TrimPrefix(strings.TrimSpace(l), filepath.Dir(file)+string(filepath.Separator)))
			}
		}
		return out
	}
}

// planShipped plans ch with the shipped CyberArk model against the simulator holding the group Eng.
func planShipped(t *testing.T, ch reconcile.Change) []string {
	t.Helper()
	sim, srv := simtest.MustStart(t, cyberarksim.Config{})
	require.NoError(t, sim.Seed("Groups", map[string]any{"id": "g1", "displayName": "Eng"}))
	c, err := provision.New(targetConfig(srv))
	require.NoError(t, err)
	defer c.Close(context.Background())
	m, err := reconcile.LoadModel("../deploy/examples/models/cyberark.yaml")
	require.NoError(t, err)
	p, err := reconcile.NewPlanner(m, reconcile.Options{}).Plan(t.Context(), pipeline.ReaderFor(c), ch)
	if err != nil {
		return errText(err)
	}
	return append([]string{p.Skipped}, p.Notes...)
}

// planChange plans ch against the simulator holding u1 and returns what the plan says: its skip
// reason, notes, the rule behind each part of each body, or its error.
func planChange(t *testing.T, ch reconcile.Change) []string {
	t.Helper()
	sim, srv := simtest.MustStart(t, cyberarksim.Config{})
	require.NoError(t, sim.Seed("Users", map[string]any{"id": "u1", "userName": "ada@example.com", "title": "Engineer"}))
	c, err := provision.New(targetConfig(srv))
	require.NoError(t, err)
	defer c.Close(context.Background())
	m, err := reconcile.ParseModel("plan-model.yaml", []byte(planModel))
	require.NoError(t, err)
	p, err := reconcile.NewPlanner(m, reconcile.Options{}).Plan(t.Context(), pipeline.ReaderFor(c), ch)
	if err != nil {
		return errText(err)
	}
	out := append([]string{p.Skipped}, p.Notes...)
	for _, r := range p.Requests {
		for _, s := range r.Sources {
			out = append(out, s.Rule)
		}
	}
	return out
}

// badModel loads a model with a misspelt type on line 7 and a misspelt property on line 9.
func badModel(t *testing.T) []string {
	const model = `objects:
  - name: User
    resource: Users
    properties:
      - name: userName
        isKey: true
      - {name: title, type: strng}
    taskMappings:
      Update: [{name: title, action: modify}, {name: titel, action: modify}]
`
	var out []string
	_, err := reconcile.ParseModel("models/x.yaml", []byte(model))
	out = append(out, errLines(err)...)
	// The schema stops at the misspelt type; with it fixed the unknown property shows.
	_, err = reconcile.ParseModel("models/x.yaml", []byte(strings.Replace(model, "type: strng", "type: string", 1)))
	return append(out, errLines(err)...)
}

// errLines is errText with multi-line messages split into lines.
func errLines(err error) []string {
	var out []string
	for _, m := range errText(err) {
		out = append(out, strings.Split(m, "\n")...)
	}
	return out
}

// formatsIn returns the string literals of a Go file that start with prefix, formatted with arg:
// what a main package, which a test cannot call, prints.
func formatsIn(t *testing.T, file, prefix string, arg any) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
	require.NoError(t, err)
	var out []string
	ast.Inspect(f, func(n ast.Node) bool {
		if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
			if v, err := strconv.Unquote(lit.Value); err == nil && strings.HasPrefix(v, prefix) {
				out = append(out, strings.TrimSpace(fmt.Sprintf(v, arg)))
			}
		}
		return true
	})
	return out
}

func noAuth() cyberarksim.Config {
	off := false
	return cyberarksim.Config{RequireAuth: &off}
}

// simRequest sends one request to a fresh simulator without authentication and returns the
// answer's body.
func simRequest(t *testing.T, method, path, body string) []string {
	_, srv := simtest.MustStart(t, noAuth())
	return simRequestTo(t, srv, method, path, body)
}

func simRequestTo(t *testing.T, srv *httptest.Server, method, path, body string) []string {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+path, bytes.NewBufferString(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/scim+json")
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return []string{string(raw)}
}
