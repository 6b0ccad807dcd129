package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scimflow/scimflow/internal/cyberarksim"
	"github.com/scimflow/scimflow/internal/events"
)

// fakeTarget applies steps the way a correct worker and the simulator would, producing the
// evidence a perfect run leaves: the checks must find nothing in it, and must find each defect
// the tests below plant.
type fakeTarget struct {
	seq     uint64
	nextID  int
	users   map[string]*SimUser
	groups  map[string]*SimGroup
	idOf    map[string]string // userName → id (pool users)
	writes  []cyberarksim.Write
	outcome []*events.Outcome
}

func newFake() *fakeTarget {
	return &fakeTarget{users: map[string]*SimUser{}, groups: map[string]*SimGroup{}, idOf: map[string]string{}}
}

func (f *fakeTarget) write(w cyberarksim.Write) {
	f.seq++
	w.Seq = f.seq
	f.writes = append(f.writes, w)
}

func title(v string) map[string]json.RawMessage {
	return map[string]json.RawMessage{"title": json.RawMessage(fmt.Sprintf("%q", v))}
}

func (f *fakeTarget) apply(s *Step) {
	k := s.Key
	switch s.Kind {
	case UserCreate:
		f.nextID++
		id := fmt.Sprintf("u%d", f.nextID)
		f.users[k.Name] = &SimUser{ID: id, UserName: k.Name, Title: s.Title}
		f.idOf[k.Name] = id
		f.write(cyberarksim.Write{Method: "POST", Resource: cyberarksim.Users, ID: id, Key: k.Name, Fields: []string{"password", "title", "userName"}, Values: title(s.Title)})
	case UserUpdate:
		u := f.users[k.Name]
		u.Title = s.Title
		f.write(cyberarksim.Write{Method: "PATCH", Resource: cyberarksim.Users, ID: u.ID, Key: k.Name, Fields: []string{"title"}, Values: title(s.Title)})
	case UserDelete:
		u := f.users[k.Name]
		delete(f.users, k.Name)
		f.write(cyberarksim.Write{Method: "DELETE", Resource: cyberarksim.Users, ID: u.ID, Key: k.Name})
	case GroupCreate:
		f.nextID++
		g := &SimGroup{ID: fmt.Sprintf("g%d", f.nextID), DisplayName: k.Name}
		f.groups[k.Name] = g
		w := cyberarksim.Write{Method: "POST", Resource: cyberarksim.Groups, ID: g.ID, Key: k.Name, Fields: []string{"displayName"}}
		for _, m := range s.Members {
			g.Members = append(g.Members, struct {
				Value string `json:"value"`
			}{f.idOf[m]})
			w.MembersAdded = append(w.MembersAdded, f.idOf[m])
		}
		if len(s.Members) > 0 {
			w.Fields = append(w.Fields, "members")
		}
		f.write(w)
	case GroupAdd, GroupRemove:
		g := f.groups[k.Name]
		w := cyberarksim.Write{Method: "PATCH", Resource: cyberarksim.Groups, ID: g.ID, Key: k.Name, Fields: []string{"members"}}
		for _, m := range s.Members {
			id := f.idOf[m]
			if s.Kind == GroupAdd {
				g.Members = append(g.Members, struct {
					Value string `json:"value"`
				}{id})
				w.MembersAdded = append(w.MembersAdded, id)
			} else {
				g.Members = slices.DeleteFunc(g.Members, func(x struct {
					Value string `json:"value"`
				}) bool {
					return x.Value == id
				})
				w.MembersRemoved = append(w.MembersRemoved, id)
			}
		}
		f.write(w)
	}
	f.outcome = append(f.outcome, &events.Outcome{ID: s.ID, InputID: s.ID, Status: events.StatusSucceeded, Final: true, Attempt: 1, Worker: "w1"})
}

func (f *fakeTarget) evidence(w *Workload) *Evidence {
	ev := &Evidence{Published: map[string]bool{}, StreamMsgs: int64(len(w.Order)), Outcomes: f.outcome, Writes: f.writes}
	for _, s := range w.Order {
		ev.Published[s.ID] = true
	}
	for _, u := range f.users {
		ev.Users = append(ev.Users, *u)
	}
	for _, g := range f.groups {
		ev.Groups = append(ev.Groups, *g)
	}
	return ev
}

func perfectRun(t *testing.T, seed uint64) (*Workload, *fakeTarget) {
	t.Helper()
	w, err := Generate(WorkloadConfig{Seed: seed, Keys: 60, Events: 600, RunID: "t"})
	require.NoError(t, err)
	f := newFake()
	for _, s := range w.Order {
		f.apply(s)
	}
	return w, f
}

func kinds(vs []Violation) map[string]int {
	m := map[string]int{}
	for _, v := range vs {
		m[v.Kind]++
	}
	return m
}

func TestCheckPassesAPerfectRun(t *testing.T) {
	t.Parallel()
	for seed := uint64(1); seed <= 5; seed++ {
		w, f := perfectRun(t, seed)
		vs, tally := Check(w, f.evidence(w))
		assert.Empty(t, vs, "seed %d", seed)
		assert.Equal(t, len(w.Order), tally.Final)
	}
}

// firstKeyWith returns the first user key whose sequence has a Delete followed by a re-Create.
func firstRecreated(w *Workload) *Key {
	for _, k := range w.Keys {
		seenDelete := false
		for _, s := range k.Steps {
			if s.Kind == UserDelete {
				seenDelete = true
			}
			if seenDelete && s.Kind == UserCreate && s.Index < len(k.Steps) {
				return k
			}
		}
	}
	return nil
}

func TestCheckFindsLostAndDuplicateOutcomesAndDeadLetters(t *testing.T) {
	t.Parallel()
	w, f := perfectRun(t, 7)
	ev := f.evidence(w)
	lost := ev.Outcomes[10]
	dup := *ev.Outcomes[20]
	dup.Worker = "w2"
	dl := ev.Outcomes[30]
	dl.Status, dl.Error = events.StatusDeadLettered, &events.OutcomeError{Class: "not_found", Message: "no such user"}
	ev.Outcomes = append(slices.Delete(slices.Clone(ev.Outcomes), 10, 11), &dup)
	vs, tally := Check(w, ev)
	k := kinds(vs)
	assert.Equal(t, 1, k["lost"], "%v", vs)
	assert.Equal(t, 1, k["duplicate-outcome"], "%v", vs)
	assert.Equal(t, 1, k["dead-lettered"], "%v", vs)
	assert.Equal(t, 1, tally.MultiWorkerEvents)
	assert.Contains(t, fmt.Sprint(vs), lost.InputID)
}

func TestCheckFindsAnInversion(t *testing.T) {
	t.Parallel()
	w, f := perfectRun(t, 3)
	// Two updates of one user applied in the wrong order: v3 after v4.
	var i, j int = -1, -1
	for n, wr := range f.writes {
		if wr.Method == "PATCH" && wr.Resource == cyberarksim.Users {
			for m := n + 1; m < len(f.writes); m++ {
				if f.writes[m].ID == wr.ID && f.writes[m].Method == "PATCH" {
					i, j = n, m
					break
				}
			}
			if i >= 0 {
				break
			}
		}
	}
	require.GreaterOrEqual(t, i, 0)
	ws := f.writes
	ws[i].Values, ws[j].Values = ws[j].Values, ws[i].Values
	vs, _ := Check(w, f.evidence(w))
	assert.Equal(t, 1, kinds(vs)["order"], "%v", vs)
}

func TestCheckFindsAStaleUpdateOfADeletedObjectAndAResurrection(t *testing.T) {
	t.Parallel()
	w, f := perfectRun(t, 11)
	k := firstRecreated(w)
	require.NotNil(t, k)
	// Find the object the first Create made and replay the key's first Update onto the object of
	// the re-create, after its last write: an update overtaken by a delete and a create.
	var firstID, lastID, firstUpdateTitle string
	for _, wr := range f.writes {
		if wr.Key != k.Name {
			continue
		}
		if firstID == "" {
			firstID = wr.ID
		}
		lastID = wr.ID
		if wr.Method == "PATCH" && firstUpdateTitle == "" {
			firstUpdateTitle, _ = titleOf(wr)
		}
	}
	require.NotEqual(t, firstID, lastID)
	if firstUpdateTitle != "" {
		f.write(cyberarksim.Write{Method: "PATCH", Resource: cyberarksim.Users, ID: lastID, Key: k.Name, Fields: []string{"title"}, Values: title(firstUpdateTitle)})
		vs, _ := Check(w, f.evidence(w))
		assert.GreaterOrEqual(t, kinds(vs)["order"], 1, "%v", vs)
		assert.Contains(t, fmt.Sprint(vs), "to the object #")
	}

	// A first Create redelivered after the delete: the object comes back.
	w2, f2 := perfectRun(t, 11)
	k2 := firstRecreated(w2)
	f2.write(cyberarksim.Write{Method: "POST", Resource: cyberarksim.Users, ID: "ghost", Key: k2.Name, Fields: []string{"title"}, Values: title("v1")})
	vs, _ := Check(w2, f2.evidence(w2))
	kk := kinds(vs)
	assert.GreaterOrEqual(t, kk["order"]+kk["duplicate-object"], 2, "%v", vs)
}

func TestCheckFindsGroupMembershipOutOfOrderAndUnapplied(t *testing.T) {
	t.Parallel()
	w, f := perfectRun(t, 5)
	// Drop the first membership removal and apply it at the very end instead; drop another
	// group's last PATCH altogether.
	var moved *cyberarksim.Write
	var kept []cyberarksim.Write
	for _, wr := range f.writes {
		if moved == nil && wr.Resource == cyberarksim.Groups && len(wr.MembersRemoved) > 0 {
			c := wr
			moved = &c
			continue
		}
		kept = append(kept, wr)
	}
	require.NotNil(t, moved)
	// A re-add of the removed member after its removal: the add is stale.
	readd := *moved
	readd.MembersAdded, readd.MembersRemoved = moved.MembersRemoved, nil
	f.writes = append(kept, *moved, readd)
	vs, _ := Check(w, f.evidence(w))
	k := kinds(vs)
	assert.GreaterOrEqual(t, k["order"], 2, "the removal after later changes, and the stale re-add: %v", vs)
}

func TestCheckFindsDuplicateObjectsStateAndUnknownObjects(t *testing.T) {
	t.Parallel()
	w, f := perfectRun(t, 9)
	ev := f.evidence(w)
	ev.Users = append(ev.Users, SimUser{ID: "x1", UserName: strings.ToUpper(ev.Users[0].UserName), Title: "v1"})
	ev.Users = append(ev.Users, SimUser{ID: "x2", UserName: "stranger@example.com"})
	cleared := false
	for i, g := range ev.Groups {
		if len(g.Members) > 0 && !cleared {
			ev.Groups[i].Members, cleared = nil, true
		}
	}
	require.True(t, cleared)
	for i, u := range ev.Users {
		if i > 0 && strings.HasPrefix(u.UserName, "chaos-") {
			ev.Users[i].Title = "v0"
			break
		}
	}
	ev.StreamMsgs--
	vs, _ := Check(w, ev)
	k := kinds(vs)
	assert.Equal(t, 1, k["duplicate-object"], "%v", vs)
	assert.Equal(t, 1, k["unexpected-write"], "%v", vs)
	assert.Equal(t, 1, k["broker"], "%v", vs)
	assert.Equal(t, 2, k["state"], "a group's members and a user's title: %v", vs)
}

func TestCheckFindsAnUnappliedEvent(t *testing.T) {
	t.Parallel()
	w, f := perfectRun(t, 13)
	// Lose one user PATCH in the middle of a sequence: its outcome says succeeded, the target
	// never saw it, and a later write hides it from the final state.
	for n, wr := range f.writes {
		if wr.Method == "PATCH" && wr.Resource == cyberarksim.Users {
			f.writes = slices.Delete(f.writes, n, n+1)
			break
		}
	}
	vs, _ := Check(w, f.evidence(w))
	require.Equal(t, 1, kinds(vs)["unapplied"], "%v", vs)
	for _, v := range vs {
		if v.Kind == "unapplied" {
			// The violation says what the event's final outcome claimed, to explain itself.
			assert.Regexp(t, `\(outcomes: succeeded by \S+ \(attempt 1, partition \d+\); the final one says: `, v.Text)
		}
	}
}

func TestGenerateIsDeterministicAndKeepsItsPromises(t *testing.T) {
	t.Parallel()
	a, err := Generate(WorkloadConfig{Seed: 42, Keys: 200, Events: 2000, RunID: "x"})
	require.NoError(t, err)
	b, err := Generate(WorkloadConfig{Seed: 42, Keys: 200, Events: 2000, RunID: "x"})
	require.NoError(t, err)
	require.Len(t, a.Order, 2000)
	for i := range a.Order {
		require.Equal(t, a.Order[i].ID, b.Order[i].ID)
	}
	seen := map[*Key]int{}
	poolCreated := map[string]bool{}
	for _, s := range a.Order {
		require.Equal(t, seen[s.Key]+1, s.Index, "a key's steps are published in order")
		seen[s.Key] = s.Index
		if s.Key.Pool && s.Kind == UserCreate {
			poolCreated[s.Key.Name] = true
		}
		for _, m := range s.Members {
			require.True(t, poolCreated[m], "a member is created before a group names it")
		}
		if s.Key.Pool {
			require.NotEqual(t, UserDelete, s.Kind, "the member pool is never deleted")
		}
		if s.Kind == UserUpdate || s.Kind == UserCreate {
			require.Equal(t, s.Index, titleIndex(s.Title))
		}
	}
	var deletes, recreates, removes int
	for _, k := range a.Keys {
		for i, s := range k.Steps {
			if s.Kind == UserDelete {
				deletes++
				if i+1 < len(k.Steps) {
					require.Equal(t, UserCreate, k.Steps[i+1].Kind, "after a Delete comes a Create")
					recreates++
				}
			}
			if s.Kind == GroupRemove {
				removes++
			}
		}
	}
	assert.Positive(t, deletes)
	assert.Positive(t, recreates)
	assert.Positive(t, removes)
}

func TestCheckCountsTwoWorkersOnOnePartition(t *testing.T) {
	t.Parallel()
	w, f := perfectRun(t, 17)
	ev := f.evidence(w)
	t0 := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	for i, o := range ev.Outcomes {
		o.Partition, o.Time = 1, t0.Add(time.Duration(i)*time.Second)
	}
	// w1, w2, w1 within two seconds: both worked partition 1 at once.
	ev.Outcomes[10].Worker = "w2"
	_, tally := Check(w, ev)
	assert.Equal(t, 1, tally.Overlaps)
	assert.Equal(t, 1, tally.OverlapPartitions)
	assert.Equal(t, 2, tally.PartitionWorkerMoves)
	require.Len(t, tally.OverlapExamples, 1)
	assert.Contains(t, tally.OverlapExamples[0], "partition 1: w1 at 09:00:09.000, w2 at 09:00:10.000, w1 again at 09:00:11.000")

	// The same with w1 restarted in between is a handover back, not sharing.
	ev.Starts = map[string][]time.Time{"w1": {t0, t0.Add(10500 * time.Millisecond)}}
	_, tally = Check(w, ev)
	assert.Zero(t, tally.Overlaps)
}
