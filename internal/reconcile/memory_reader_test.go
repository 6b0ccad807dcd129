package reconcile

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/stretchr/testify/require"
)

// memoryReader is an in-memory SCIM service provider for Resolve and Get, shaped like a real one:
// objects carry id, schemas and meta; filters compare strings case-insensitively (RFC 7643
// caseExact defaults to false); Get returns a fresh decoding of the stored JSON (numbers are
// float64, as a client decoding without UseNumber sees them) and a 404 error for an unknown id.
// apply() plays the role of the server for the requests a plan sends, so tests can check what
// planning the same change again does.
type memoryReader struct {
	mu       sync.Mutex
	objects  map[string][]map[string]any // resource → objects
	nextID   int
	resolves []resolveCall
	gets     []string
	fail     error // returned by every call when set
	failGet  error // returned by Get when set
}

type resolveCall struct {
	Resource string
	Match    []Match
}

// tb is what the helpers need of a test: *testing.T and *rapid.T both fit.
type tb interface {
	Helper()
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	FailNow()
}

// scimError is what the fake returns for HTTP errors.
type scimError struct {
	Status int
	Detail string
}

func (e *scimError) Error() string { return fmt.Sprintf("SCIM %d: %s", e.Status, e.Detail) }

func newMemoryReader() *memoryReader {
	return &memoryReader{objects: map[string][]map[string]any{}, nextID: 100}
}

var _ Reader = (*memoryReader)(nil)

// add stores obj (JSON text) in resource, assigning an id when it has none, and returns the id.
func (m *memoryReader) add(t tb, resource, obj string) string {
	t.Helper()
	var v map[string]any
	require.NoError(t, json.Unmarshal([]byte(obj), &v))
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.store(resource, v)
}

func (m *memoryReader) store(resource string, v map[string]any) string {
	id, _ := v["id"].(string)
	if id == "" {
		m.nextID++
		id = strconv.Itoa(m.nextID)
		v["id"] = id
	}
	v["meta"] = map[string]any{"resourceType": strings.TrimSuffix(resource, "s"), "location": "https://scim.test/scim/v2/" + resource + "/" + id}
	m.objects[resource] = append(m.objects[resource], v)
	return id
}

func (m *memoryReader) Resolve(_ context.Context, resource string, match []Match) (string, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.resolves = append(m.resolves, resolveCall{Resource: resource, Match: slices.Clone(match)})
	if m.fail != nil {
		return "", false, m.fail
	}
	for _, o := range m.objects[resource] {
		ok := true
		for _, mt := range match {
			if !slices.ContainsFunc(valuesAt(o, mt.Attr), func(v any) bool {
				s, isText := scalarText(v)
				return isText && strings.EqualFold(s, mt.Value)
			}) {
				ok = false
				break
			}
		}
		if ok {
			return o["id"].(string), true, nil
		}
	}
	return "", false, nil
}

func (m *memoryReader) Get(_ context.Context, resource, id string) (map[string]any, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gets = append(m.gets, resource+"/"+id)
	if err := cmp.Or(m.fail, m.failGet); err != nil {
		return nil, err
	}
	i := m.index(resource, id)
	if i < 0 {
		return nil, &scimError{Status: 404, Detail: "Resource " + id + " not found"}
	}
	raw, _ := json.Marshal(m.objects[resource][i])
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return out, nil
}

func (m *memoryReader) index(resource, id string) int {
	return slices.IndexFunc(m.objects[resource], func(o map[string]any) bool { return o["id"] == id })
}

// object returns the stored object (a copy, without meta) for assertions.
func (m *memoryReader) object(t tb, resource, id string) map[string]any {
	t.Helper()
	o, err := m.Get(context.Background(), resource, id)
	require.NoError(t, err)
	delete(o, "meta")
	return o
}

// valuesAt reads an attribute path (name.givenName, emails.value, urn:...:User:manager.value) from
// o, fanning out over arrays as SCIM filters do.
func valuesAt(o map[string]any, attr string) []any {
	var segs []string
	if strings.HasPrefix(strings.ToLower(attr), "urn:") {
		i := strings.LastIndexByte(attr, ':')
		segs = append([]string{attr[:i]}, strings.Split(attr[i+1:], ".")...)
	} else {
		segs = strings.Split(attr, ".")
	}
	cur := []any{o}
	for _, s := range segs {
		var next []any
		for _, c := range cur {
			var v any
			switch c := c.(type) {
			case map[string]any:
				v = c[s]
			default:
				continue
			}
			if arr, ok := v.([]any); ok {
				next = append(next, arr...)
			} else if v != nil {
				next = append(next, v)
			}
		}
		cur = next
	}
	return cur
}

// apply performs a planned request the way a SCIM server would.
func (m *memoryReader) apply(t tb, req Request) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	resource, id, _ := strings.Cut(req.Path, "/")
	var body map[string]any
	if req.Body != nil {
		require.NoError(t, json.Unmarshal(req.Body, &body))
	}
	switch req.Method {
	case "POST":
		m.store(resource, body)
	case "PUT":
		i := m.index(resource, id)
		require.GreaterOrEqual(t, i, 0, "PUT of an unknown object")
		body["id"] = id
		body["meta"] = m.objects[resource][i]["meta"]
		m.objects[resource][i] = body
	case "DELETE":
		i := m.index(resource, id)
		require.GreaterOrEqual(t, i, 0, "DELETE of an unknown object")
		m.objects[resource] = slices.Delete(m.objects[resource], i, i+1)
	case "PATCH":
		i := m.index(resource, id)
		require.GreaterOrEqual(t, i, 0, "PATCH of an unknown object")
		obj := m.objects[resource][i]
		for _, raw := range body["Operations"].([]any) {
			applyPatchOp(t, obj, raw.(map[string]any))
		}
	default:
		t.Fatalf("unknown method %s", req.Method)
	}
}

// applyPatchOp implements the subset of RFC 7644 §3.5.2 that plans produce.
func applyPatchOp(t tb, obj map[string]any, op map[string]any) {
	t.Helper()
	path, _ := op["path"].(string)
	filter := ""
	if i := strings.IndexByte(path, '['); i >= 0 && strings.HasSuffix(path, "]") {
		path, filter = path[:i], path[i+1:len(path)-1]
	}
	parent, key := obj, path
	if strings.HasPrefix(strings.ToLower(path), "urn:") {
		i := strings.LastIndexByte(path, ':')
		ext, _ := obj[path[:i]].(map[string]any)
		if ext == nil {
			ext = map[string]any{}
			obj[path[:i]] = ext
		}
		parent, key = ext, path[i+1:]
	}
	segs := strings.Split(key, ".")
	for _, s := range segs[:len(segs)-1] {
		next, _ := parent[s].(map[string]any)
		if next == nil {
			next = map[string]any{}
			parent[s] = next
		}
		parent = next
	}
	key = segs[len(segs)-1]
	switch strings.ToLower(op["op"].(string)) {
	case "replace":
		parent[key] = op["value"]
	case "add":
		if vals, ok := op["value"].([]any); ok {
			arr, _ := parent[key].([]any)
			for _, v := range vals {
				if !slices.ContainsFunc(arr, func(h any) bool { return contains(h, v) }) {
					arr = append(arr, v)
				}
			}
			parent[key] = arr
			return
		}
		parent[key] = op["value"]
	case "remove":
		if filter == "" {
			delete(parent, key)
			return
		}
		want := map[string]any{}
		for _, cond := range strings.Split(filter, " and ") {
			attr, val, ok := strings.Cut(cond, " eq ")
			require.True(t, ok, "filter %q", filter)
			var v any
			require.NoError(t, json.Unmarshal([]byte(val), &v))
			want[attr] = v
		}
		arr, _ := parent[key].([]any)
		parent[key] = slices.DeleteFunc(arr, func(e any) bool {
			for attr, v := range want {
				got := valuesAt(map[string]any{"x": e}, "x."+attr)
				if attr == "value" {
					if _, isObj := e.(map[string]any); !isObj {
						got = []any{e}
					}
				}
				if !slices.ContainsFunc(got, func(g any) bool { return jsonEqual(g, v) }) {
					return false
				}
			}
			return true
		})
	}
}
