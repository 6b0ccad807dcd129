package reconcile

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// planCase is one planning scenario: a model (YAML, or Omada XML), the target's objects, a change,
// and what must come out.
type planCase struct {
	name     string
	model    string // YAML data model
	xml      string // or an Omada XML data model
	store    map[string][]string
	opt      Options
	change   Change
	want     []wantRequest
	skipped  string   // Plan.Skipped must contain this
	notes    []string // each must appear in a note
	wantErr  error    // errors.Is
	errText  []string // the error message must contain each
	modelErr []string // the model must fail to load with these texts
	resolves []resolveCall
	gets     []string
	check    func(t *testing.T, p *Plan, r *memoryReader)
	checkErr func(t *testing.T, err error)
	setup    func(r *memoryReader)
}

// wantRequest is an expected request; body is JSON compared semantically ("" for none).
type wantRequest struct {
	method, path, body string
}

func parseCaseModel(t *testing.T, c planCase) (*Model, error) {
	t.Helper()
	if c.xml != "" {
		return ImportOmada(strings.NewReader(c.xml), "case.xml")
	}
	return ParseModel("case.yaml", []byte(c.model))
}

func runPlanCase(t *testing.T, c planCase) {
	t.Helper()
	m, err := parseCaseModel(t, c)
	if len(c.modelErr) > 0 {
		require.Error(t, err, "the model must be refused")
		for _, s := range c.modelErr {
			assert.Contains(t, err.Error(), s)
		}
		return
	}
	require.NoError(t, err)
	r := newMemoryReader()
	for _, res := range sortedKeys(c.store) {
		for _, obj := range c.store[res] {
			r.add(t, res, obj)
		}
	}
	if c.setup != nil {
		c.setup(r)
	}
	plan, err := NewPlanner(m, c.opt).Plan(context.Background(), r, c.change)
	if c.wantErr != nil || len(c.errText) > 0 || c.checkErr != nil {
		require.Error(t, err)
		if c.wantErr != nil {
			assert.True(t, errors.Is(err, c.wantErr), "want %v, got %v", c.wantErr, err)
		}
		for _, s := range c.errText {
			assert.Contains(t, err.Error(), s)
		}
		if c.checkErr != nil {
			c.checkErr(t, err)
		}
		return
	}
	require.NoError(t, err)
	assertRequests(t, c.want, plan)
	if c.skipped != "" {
		assert.Contains(t, plan.Skipped, c.skipped)
	} else if len(c.want) == 0 {
		t.Errorf("case expects no request but names no skip reason (plan skipped %q)", plan.Skipped)
	}
	for _, n := range c.notes {
		assert.True(t, containsNote(plan.Notes, n), "note %q not in %q", n, plan.Notes)
	}
	if c.resolves != nil {
		if len(c.resolves) == 0 {
			assert.Empty(t, r.resolves, "Resolve calls")
		} else {
			assert.Equal(t, c.resolves, r.resolves, "Resolve calls")
		}
	}
	if c.gets != nil {
		assert.Equal(t, c.gets, nonNil(r.gets), "Get calls")
	}
	// Every plan renders, and every source points into its body.
	var b bytes.Buffer
	require.NoError(t, plan.Render(&b))
	for _, req := range plan.Requests {
		assertSourcesResolve(t, req)
	}
	if c.check != nil {
		c.check(t, plan, r)
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func containsNote(notes []string, want string) bool {
	for _, n := range notes {
		if strings.Contains(n, want) {
			return true
		}
	}
	return false
}

func assertRequests(t *testing.T, want []wantRequest, plan *Plan) {
	t.Helper()
	require.Len(t, plan.Requests, len(want), "requests: %s", describeRequests(plan.Requests))
	for i, w := range want {
		got := plan.Requests[i]
		assert.Equal(t, w.method, got.Method, "request %d method", i)
		assert.Equal(t, w.path, got.Path, "request %d path", i)
		if w.body == "" {
			assert.Nil(t, got.Body, "request %d body", i)
			continue
		}
		assert.JSONEq(t, w.body, string(got.Body), "request %d body", i)
	}
}

func describeRequests(rs []Request) string {
	var b strings.Builder
	for _, r := range rs {
		b.WriteString(r.Method + " " + r.Path + " " + string(r.Body) + "\n")
	}
	return b.String()
}

// assertSourcesResolve checks that every Source pointer names a location of the body.
func assertSourcesResolve(t *testing.T, req Request) {
	t.Helper()
	if req.Body == nil {
		assert.Empty(t, req.Sources)
		return
	}
	doc, err := decodeJSON(req.Body)
	require.NoError(t, err)
	for _, s := range req.Sources {
		assert.NotEmpty(t, s.Rule)
		if s.Pointer == "" {
			continue
		}
		cur := doc
		for _, tok := range strings.Split(s.Pointer, "/")[1:] {
			tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
			switch c := cur.(type) {
			case map[string]any:
				v, ok := c[tok]
				if !assert.True(t, ok, "source %q (%s) points nowhere in %s", s.Pointer, s.Rule, req.Body) {
					return
				}
				cur = v
			case []any:
				i := -1
				for j := range c {
					if tok == strconv.Itoa(j) {
						i = j
					}
				}
				if !assert.True(t, i >= 0, "source %q (%s) points nowhere in %s", s.Pointer, s.Rule, req.Body) {
					return
				}
				cur = c[i]
			default:
				t.Errorf("source %q (%s) points below a scalar in %s", s.Pointer, s.Rule, req.Body)
				return
			}
		}
	}
}
