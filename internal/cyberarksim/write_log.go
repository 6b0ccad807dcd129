package cyberarksim

import (
	"bytes"
	"encoding/json"
	"net/http"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"
	"weak"
)

// Write is one change the simulator applied to a resource through the SCIM API: what a test
// compares with what it asked for, to check ordering and exactly-once effects. Reads, refused
// requests and writes that changed nothing (a PUT or PATCH to the values already stored) are not
// writes. Seeded fixtures are not logged.
type Write struct {
	// Seq numbers the writes of this Server from 1, in the order they were applied (one at a
	// time: the store's lock orders them).
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	// Method is POST, PUT, PATCH or DELETE; CASCADE is a Group that lost a member because that
	// member was deleted.
	Method string `json:"method"`
	// Resource is the endpoint: Users, Groups, Containers, ContainerPermissions, PrivilegedData.
	Resource string `json:"resource"`
	ID       string `json:"id"`
	// Key is the resource's unique name: userName, Group displayName, Container name; the id for
	// the other resources.
	Key string `json:"key"`
	// Fields are the top-level attributes the write changed (a create: every attribute it set),
	// sorted; "members" when a Group's membership changed, "password" when the password did.
	Fields []string `json:"fields,omitempty"`
	// Values are the new values of Fields, absent for a removed attribute; never the password
	// nor the members (see MembersAdded, MembersRemoved).
	Values map[string]json.RawMessage `json:"values,omitempty"`
	// MembersAdded and MembersRemoved are the member ids a Group write added and removed.
	MembersAdded   []string `json:"membersAdded,omitempty"`
	MembersRemoved []string `json:"membersRemoved,omitempty"`
}

// DefaultWriteLogCapacity is how many writes the log keeps; older ones are dropped (WritePage
// tells a reader that fell behind through Oldest).
const DefaultWriteLogCapacity = 1 << 18

// WritePage is a slice of the write log.
type WritePage struct {
	Writes []Write `json:"writes"`
	// Next is the Since to ask for the writes after these.
	Next uint64 `json:"next"`
	// Oldest is the smallest Seq still kept (0 when none is): a reader that asked for Since <
	// Oldest-1 missed writes that were dropped.
	Oldest uint64 `json:"oldest"`
	// Last is the Seq of the newest write (0 when there was none).
	Last uint64 `json:"last"`
}

// writeLog is the bounded, in-memory log of applied writes.
type writeLog struct {
	mu     sync.Mutex
	seq    uint64
	writes []Write
	cap    int
}

func (l *writeLog) append(w Write) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	w.Seq = l.seq
	l.writes = append(l.writes, w)
	if len(l.writes) > l.cap {
		// Drop a quarter at once so that appending stays amortised O(1).
		drop := max(len(l.writes)-l.cap, l.cap/4)
		l.writes = slices.Delete(l.writes, 0, drop)
	}
}

func (l *writeLog) page(since uint64, limit int) WritePage {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := WritePage{Last: l.seq, Next: since, Writes: []Write{}}
	if len(l.writes) == 0 {
		return p
	}
	p.Oldest = l.writes[0].Seq
	i := sort.Search(len(l.writes), func(i int) bool { return l.writes[i].Seq > since })
	end := len(l.writes)
	if limit < end-i {
		end = i + limit
	}
	p.Writes = slices.Clone(l.writes[i:end])
	if n := len(p.Writes); n > 0 {
		p.Next = p.Writes[n-1].Seq
	}
	return p
}

func (l *writeLog) clear() {
	l.mu.Lock()
	l.writes = nil
	l.mu.Unlock()
}

// writeLogs holds each Server's log without keeping the Server alive: the entry goes when the
// Server is collected.
var writeLogs sync.Map // weak.Pointer[Server] → *writeLog

func (s *Server) writeLog() *writeLog {
	k := weak.Make(s)
	if l, ok := writeLogs.Load(k); ok {
		return l.(*writeLog)
	}
	l, loaded := writeLogs.LoadOrStore(k, &writeLog{cap: DefaultWriteLogCapacity})
	if !loaded {
		runtime.AddCleanup(s, func(k weak.Pointer[Server]) { writeLogs.Delete(k) }, k)
	}
	return l.(*writeLog)
}

// Writes returns up to limit writes with Seq > since, oldest first (limit ≤ 0: all of them).
func (s *Server) Writes(since uint64, limit int) WritePage {
	if limit <= 0 {
		limit = int(^uint(0) >> 1)
	}
	return s.writeLog().page(since, limit)
}

// ClearWrites drops the logged writes; Seq keeps counting.
func (s *Server) ClearWrites() { s.writeLog().clear() }

// writeState is what a write is compared with: a record as it was before the write.
type writeState struct {
	doc      []byte
	password string
	members  []string
}

// beforeWrite captures rec before an update. The caller holds s.mu.
func beforeWrite(rec *record) writeState {
	st := writeState{doc: rec.doc, password: rec.password}
	if rec.members != nil {
		st.members = rec.members.list()
	}
	return st
}

// logCreate logs a created resource. The caller holds s.mu.
func (s *Server) logCreate(c *collection, rec *record, mode writeMode) {
	if mode == modeSeed {
		return
	}
	s.logChange(c, rec, http.MethodPost, writeState{})
}

// logUpdate logs a PUT or PATCH that changed rec, given its state before. The caller holds s.mu.
func (s *Server) logUpdate(c *collection, rec *record, mode writeMode, before writeState) {
	method := http.MethodPut
	if mode == modePatched {
		method = http.MethodPatch
	}
	s.logChange(c, rec, method, before)
}

func (s *Server) logChange(c *collection, rec *record, method string, before writeState) {
	doc := decodeDoc(rec.doc)
	old := decodeDoc(before.doc)
	w := Write{Time: s.now().UTC(), Method: method, Resource: c.rt.endpoint, ID: rec.id, Key: writeKey(c, rec, doc)}
	for k, v := range doc {
		nv, _ := json.Marshal(v)
		if ov, ok := old[k]; ok {
			if b, _ := json.Marshal(ov); bytes.Equal(b, nv) {
				continue
			}
		}
		w.Fields = append(w.Fields, k)
		if w.Values == nil {
			w.Values = map[string]json.RawMessage{}
		}
		w.Values[k] = nv
	}
	for k := range old {
		if _, ok := doc[k]; !ok {
			w.Fields = append(w.Fields, k)
		}
	}
	if rec.password != before.password {
		w.Fields = append(w.Fields, "password")
	}
	if rec.members != nil {
		was := make(map[string]bool, len(before.members))
		for _, id := range before.members {
			was[id] = true
		}
		for _, id := range rec.members.list() {
			if !was[id] {
				w.MembersAdded = append(w.MembersAdded, id)
			}
			delete(was, id)
		}
		for _, id := range before.members {
			if was[id] {
				w.MembersRemoved = append(w.MembersRemoved, id)
			}
		}
		if len(w.MembersAdded)+len(w.MembersRemoved) > 0 {
			w.Fields = append(w.Fields, "members")
		}
	}
	sort.Strings(w.Fields)
	s.writeLog().append(w)
}

// logMembers logs a membership change made without rewriting the Group (a members-only PATCH, or
// a member deleted: CASCADE). The caller holds s.mu.
func (s *Server) logMembers(c *collection, rec *record, method string, added, removed []string) {
	if len(added)+len(removed) == 0 {
		return
	}
	s.writeLog().append(Write{
		Time: s.now().UTC(), Method: method, Resource: c.rt.endpoint, ID: rec.id,
		Key: writeKey(c, rec, decodeDoc(rec.doc)), Fields: []string{"members"},
		MembersAdded: slices.Clone(added), MembersRemoved: slices.Clone(removed),
	})
}

// logDelete logs a deleted resource, before it goes. The caller holds s.mu.
func (s *Server) logDelete(c *collection, rec *record) {
	s.writeLog().append(Write{
		Time: s.now().UTC(), Method: http.MethodDelete, Resource: c.rt.endpoint, ID: rec.id,
		Key: writeKey(c, rec, decodeDoc(rec.doc)),
	})
}

// writeKey is the unique name of a resource.
func writeKey(c *collection, rec *record, doc map[string]any) string {
	var k string
	switch c.rt {
	case userType:
		k, _ = doc["userName"].(string)
	case groupType:
		k, _ = doc["displayName"].(string)
	case containerType:
		k, _ = doc["name"].(string)
	}
	if k == "" {
		k = rec.id
	}
	return k
}

// maxWritesPage bounds one GET /admin/writes answer.
const maxWritesPage = 100000

// serveWriteLog serves the write log on the admin API and reports whether the request was its:
//
//	GET    /admin/writes?since=N&limit=M   the writes with seq > N (default 0), at most M
//	                                       (default and cap 100000), as a WritePage
//	DELETE /admin/writes                   drop the logged writes (seq keeps counting)
func (s *Server) serveWriteLog(w http.ResponseWriter, r *http.Request) bool {
	if r.URL.Path != "/admin/writes" {
		return false
	}
	switch r.Method {
	case http.MethodGet:
		q := r.URL.Query()
		var since uint64
		limit := maxWritesPage
		if v := q.Get("since"); v != "" {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				writeAdminJSON(w, http.StatusBadRequest, map[string]string{"error": "since: " + strconv.Quote(v) + " is not a sequence number"})
				return true
			}
			since = n
		}
		if v := q.Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				writeAdminJSON(w, http.StatusBadRequest, map[string]string{"error": "limit: " + strconv.Quote(v) + " is not a positive number"})
				return true
			}
			limit = min(n, maxWritesPage)
		}
		writeAdminJSON(w, http.StatusOK, s.Writes(since, limit))
	case http.MethodDelete:
		s.ClearWrites()
		w.WriteHeader(http.StatusNoContent)
	default:
		w.Header().Set("Allow", "GET, DELETE")
		writeAdminJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method " + r.Method + " not allowed"})
	}
	return true
}
