package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/scimflow/scimflow/internal/cyberarksim"
	"github.com/scimflow/scimflow/internal/events"
)

// Violation is one broken promise, found in the outcomes, the write log or the final state.
type Violation struct {
	Kind string // lost, duplicate-outcome, dead-lettered, duplicate-object, order, unapplied, unexpected-write, state, broker
	Key  string // the object key, when there is one
	Text string
}

func (v Violation) String() string {
	if v.Key == "" {
		return v.Kind + ": " + v.Text
	}
	return v.Kind + ": " + v.Key + ": " + v.Text
}

// Evidence is what the suite collected at the end of a run.
type Evidence struct {
	Outcomes []*events.Outcome
	Writes   []cyberarksim.Write
	// WritesMissed says the simulator dropped writes before they were read (its log is bounded).
	WritesMissed bool
	Users        []SimUser
	Groups       []SimGroup
	// Published are the ids of the events the publisher saw acknowledged.
	Published map[string]bool
	// Starts are the times each worker (by name) was started, in order.
	Starts map[string][]time.Time
	// StreamMsgs is how many events the events stream holds at the end (-1: unknown).
	StreamMsgs int64
	// OutOfTime says the suite stopped waiting for outcomes at its time limit while they still
	// arrived: an event without one may only be late.
	OutOfTime bool
}

// SimUser and SimGroup are the parts of the simulator's final state the checks read.
type SimUser struct {
	ID       string `json:"id"`
	UserName string `json:"userName"`
	Title    string `json:"title"`
}

// SimGroup is a group of the final state.
type SimGroup struct {
	ID          string `json:"id"`
	DisplayName string `json:"displayName"`
	Members     []struct {
		Value string `json:"value"`
	} `json:"members"`
}

// Tally counts what the outcomes say, for the figures.
type Tally struct {
	Final, Progress      int
	ByStatus             map[events.Status]int
	DeadLetteredByClass  map[string]int
	DeferredEvents       int // events with at least one deferred outcome
	WindowRetries        int // outcomes with attempt > 1
	MultiWorkerEvents    int // events whose outcomes came from more than one worker
	PartitionWorkerMoves int // changes of the publishing worker along each partition's outcomes
	// Overlaps count returns of a worker to a partition within overlapWindow of its previous
	// outcome there, another worker's outcome for the partition in between, and no restart of the
	// first worker between them: the two worked the partition at the same time.
	Overlaps          int
	OverlapPartitions int
	OverlapExamples   []string
}

// overlapWindow bounds the A, B, A pattern that counts as two workers on one partition at once.
const overlapWindow = 2 * time.Second

// Check runs every assertion and returns the violations, sorted by kind and key, and the tally.
func Check(w *Workload, ev *Evidence) ([]Violation, Tally) {
	var vs []Violation
	add := func(kind, key, format string, args ...any) {
		vs = append(vs, Violation{Kind: kind, Key: key, Text: fmt.Sprintf(format, args...)})
	}
	t := checkOutcomes(w, ev, add)
	if ev.StreamMsgs >= 0 && ev.StreamMsgs < int64(len(ev.Published)) {
		add("broker", "", "the events stream holds %d events, %d were published and acknowledged: acknowledged events were lost", ev.StreamMsgs, len(ev.Published))
	}
	if ev.WritesMissed {
		add("harness", "", "the simulator's write log dropped writes before they were read: order cannot be checked completely")
	}
	checkWrites(w, ev, add)
	checkState(w, ev, add)
	sort.SliceStable(vs, func(i, j int) bool {
		if vs[i].Kind != vs[j].Kind {
			return kindRank(vs[i].Kind) < kindRank(vs[j].Kind)
		}
		return vs[i].Key < vs[j].Key
	})
	return vs, t
}

func kindRank(k string) int {
	for i, o := range []string{"harness", "broker", "lost", "duplicate-outcome", "dead-lettered", "duplicate-object", "order", "unapplied", "unexpected-write", "state"} {
		if o == k {
			return i
		}
	}
	return 100
}

type addFunc func(kind, key, format string, args ...any)

func checkOutcomes(w *Workload, ev *Evidence, add addFunc) Tally {
	t := Tally{ByStatus: map[events.Status]int{}, DeadLetteredByClass: map[string]int{}}
	finals := map[string][]*events.Outcome{}
	workers := map[string]map[string]bool{}
	deferred := map[string]bool{}
	type po struct {
		o   *events.Outcome
		pos int
	}
	byPartition := map[int][]po{}
	for i, o := range ev.Outcomes {
		t.ByStatus[o.Status]++
		if o.Attempt > 1 {
			t.WindowRetries++
		}
		if o.Worker != "" {
			if workers[o.InputID] == nil {
				workers[o.InputID] = map[string]bool{}
			}
			workers[o.InputID][o.Worker] = true
		}
		byPartition[o.Partition] = append(byPartition[o.Partition], po{o, i})
		if o.Status == events.StatusDeferred {
			deferred[o.InputID] = true
		}
		if !o.Status.Final() {
			t.Progress++
			continue
		}
		t.Final++
		finals[o.InputID] = append(finals[o.InputID], o)
		if o.Status == events.StatusDeadLettered && o.Error != nil {
			t.DeadLetteredByClass[o.Error.Class]++
		}
		if w.ByID[o.InputID] == nil {
			add("duplicate-outcome", "", "final outcome %s (%s) for an event that was never published", o.ID, o.Status)
		}
	}
	t.DeferredEvents = len(deferred)
	for _, ws := range workers {
		if len(ws) > 1 {
			t.MultiWorkerEvents++
		}
	}
	parts := make([]int, 0, len(byPartition))
	for p := range byPartition {
		parts = append(parts, p)
	}
	sort.Ints(parts)
	for _, p := range parts {
		list := byPartition[p]
		sort.SliceStable(list, func(i, j int) bool { return list[i].o.Time.Before(list[j].o.Time) })
		last := map[string]*events.Outcome{}
		overlapped := false
		for i, x := range list {
			o := x.o
			if i > 0 && o.Worker != list[i-1].o.Worker {
				t.PartitionWorkerMoves++
				if prev := last[o.Worker]; prev != nil && o.Time.Sub(prev.Time) <= overlapWindow && !restartedBetween(ev.Starts[o.Worker], prev.Time, o.Time) {
					t.Overlaps++
					overlapped = true
					if len(t.OverlapExamples) < 5 {
						t.OverlapExamples = append(t.OverlapExamples, fmt.Sprintf("partition %d: %s at %s, %s at %s, %s again at %s",
							p, o.Worker, prev.Time.Format("15:04:05.000"), list[i-1].o.Worker, list[i-1].o.Time.Format("15:04:05.000"), o.Worker, o.Time.Format("15:04:05.000")))
					}
				}
			}
			last[o.Worker] = o
		}
		if overlapped {
			t.OverlapPartitions++
		}
	}
	for _, s := range w.Order {
		if !ev.Published[s.ID] {
			continue
		}
		fs := finals[s.ID]
		switch {
		case len(fs) == 0:
			late := ""
			if ev.OutOfTime {
				late = " (the wait ended out of time while outcomes still arrived)"
			}
			add("lost", keyLabel(s.Key), "#%d %s (event %s) has no final outcome%s", s.Index, s.Kind, s.ID, late)
		case len(fs) > 1:
			var st []string
			for _, o := range fs {
				st = append(st, fmt.Sprintf("%s by %s", o.Status, o.Worker))
			}
			add("duplicate-outcome", keyLabel(s.Key), "#%d %s (event %s) has %d final outcomes: %s", s.Index, s.Kind, s.ID, len(fs), strings.Join(st, ", "))
		}
		for _, o := range fs {
			if o.Status == events.StatusDeadLettered || o.Status == events.StatusRejected {
				class, msg := "", o.Reason
				if o.Error != nil {
					class, msg = o.Error.Class, o.Error.Message
				}
				add("dead-lettered", keyLabel(s.Key), "#%d %s (event %s) ended %s, class %s, attempt %d: %s", s.Index, s.Kind, s.ID, o.Status, class, o.Attempt, clip(msg, 200))
			}
		}
	}
	return t
}

func restartedBetween(starts []time.Time, from, to time.Time) bool {
	for _, s := range starts {
		if s.After(from) && !s.After(to) {
			return true
		}
	}
	return false
}

func keyLabel(k *Key) string { return k.Object + " " + k.Name }

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// checkWrites reads the write log key by key: every write must be the effect of one of the key's
// events, applied to the object that event was meant for, in the key's order; every Create,
// Update, Delete and membership change must have been applied; no create twice.
func checkWrites(w *Workload, ev *Evidence, add addFunc) {
	keys := map[string]*Key{}
	for _, k := range w.Keys {
		keys[k.Object+"/"+strings.ToLower(k.Name)] = k
	}
	userNameOf := map[string]string{} // user id → userName, from the log
	byKey := map[*Key][]cyberarksim.Write{}
	for _, wr := range ev.Writes {
		if wr.Resource == cyberarksim.Users && wr.Method == "POST" {
			userNameOf[wr.ID] = strings.ToLower(wr.Key)
		}
		object := map[string]string{cyberarksim.Users: "User", cyberarksim.Groups: "Group"}[wr.Resource]
		k := keys[object+"/"+strings.ToLower(wr.Key)]
		if k == nil {
			add("unexpected-write", wr.Resource+" "+wr.Key, "write #%d %s %s/%s: no event of the workload names this object", wr.Seq, wr.Method, wr.Resource, wr.ID)
			continue
		}
		byKey[k] = append(byKey[k], wr)
	}
	fate := fates(ev.Outcomes)
	for _, k := range w.Keys {
		if k.Object == "User" {
			checkUserWrites(k, byKey[k], fate, add)
		} else {
			checkGroupWrites(k, byKey[k], userNameOf, fate, add)
		}
	}
}

// fates says, for an event that never reached the target, what its outcomes said: each one's
// status, worker and attempt in the order read, then the final one's reason, so that the violation
// explains itself (a "superseded" skip names the later event applied ahead of it; a "parked
// behind" deferral, the parked key it waited in).
func fates(outcomes []*events.Outcome) func(id string) string {
	trail := map[string][]*events.Outcome{}
	for _, o := range outcomes {
		trail[o.InputID] = append(trail[o.InputID], o)
	}
	return func(id string) string {
		var steps []string
		var final *events.Outcome
		for _, o := range trail[id] {
			steps = append(steps, fmt.Sprintf("%s by %s (attempt %d, partition %d)", o.Status, o.Worker, o.Attempt, o.Partition))
			if o.Final && final == nil {
				final = o
			}
		}
		if final == nil {
			return "outcomes: " + cmp.Or(strings.Join(steps, ", "), "none") + "; no final one"
		}
		return fmt.Sprintf("outcomes: %s; the final one says: %s", strings.Join(steps, ", "), clip(cmp.Or(final.Reason, "no reason"), 300))
	}
}

func titleOf(wr cyberarksim.Write) (string, bool) {
	raw, ok := wr.Values["title"]
	if !ok {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return string(raw), true
	}
	return s, true
}

func checkUserWrites(k *Key, writes []cyberarksim.Write, fate func(string) string, add addFunc) {
	label := keyLabel(k)
	nextDelete := func(c int) int { // the Delete that ends the object created by step c; 0 if none
		for _, s := range k.Steps[c:] {
			if s.Kind == UserDelete {
				return s.Index
			}
		}
		return 0
	}
	gen := map[string]int{} // object id → the step that created it
	applied := map[int]int{}
	last, lastSeq := 0, uint64(0)
	for _, wr := range writes {
		idx := 0
		switch wr.Method {
		case "POST", "PUT", "PATCH":
			title, ok := titleOf(wr)
			if !ok {
				if slicesContains(wr.Fields, "title") {
					add("order", label, "write #%d %s removed the title (no event removes it)", wr.Seq, wr.Method)
				} else {
					add("unexpected-write", label, "write #%d %s changed %v, which no event of the key sets", wr.Seq, wr.Method, wr.Fields)
				}
				continue
			}
			idx = titleIndex(title)
			if idx < 1 || idx > len(k.Steps) || k.Steps[idx-1].Kind == UserDelete {
				add("unexpected-write", label, "write #%d %s set title %q, which no event of the key sets", wr.Seq, wr.Method, title)
				continue
			}
			s := k.Steps[idx-1]
			if wr.Method == "POST" {
				if s.Kind != UserCreate {
					add("order", label, "write #%d POST created the object with title %q of #%d %s: only a Create may create it", wr.Seq, title, idx, s.Kind)
				}
				if prev, dup := gen[wr.ID]; dup {
					add("order", label, "write #%d POST of id %s that #%d created already", wr.Seq, wr.ID, prev)
				}
				if n := applied[idx]; n > 0 && s.Kind == UserCreate {
					add("duplicate-object", label, "#%d Create was applied as a POST %d times (write #%d is the %s)", idx, n+1, wr.Seq, ordinal(n+1))
				}
				gen[wr.ID] = idx
			}
		case "DELETE":
			c, ok := gen[wr.ID]
			if !ok {
				add("unexpected-write", label, "write #%d DELETE of id %s, which no logged POST created", wr.Seq, wr.ID)
				continue
			}
			idx = nextDelete(c)
			if idx == 0 {
				add("order", label, "write #%d DELETE of the object #%d created, but no Delete follows #%d in the key's sequence", wr.Seq, c, c)
				continue
			}
		default:
			add("unexpected-write", label, "write #%d %s", wr.Seq, wr.Method)
			continue
		}
		s := k.Steps[idx-1]
		if c, ok := gen[wr.ID]; ok && wr.Method != "POST" {
			if d := nextDelete(c); idx < c || (d != 0 && idx > d) {
				end := "never deleted"
				if d != 0 {
					end = fmt.Sprintf("deleted by #%d", d)
				}
				add("order", label, "write #%d applied #%d %s to the object #%d created (%s)", wr.Seq, idx, s.Kind, c, end)
			}
		} else if !ok {
			add("order", label, "write #%d %s applied #%d %s to id %s, which no logged POST of this key created", wr.Seq, wr.Method, idx, s.Kind, wr.ID)
		}
		if idx < last {
			add("order", label, "write #%d applied #%d %s after write #%d had applied #%d %s", wr.Seq, idx, s.Kind, lastSeq, last, k.Steps[last-1].Kind)
		} else {
			last, lastSeq = idx, wr.Seq
		}
		applied[idx]++
	}
	for _, s := range k.Steps {
		if applied[s.Index] == 0 {
			add("unapplied", label, "#%d %s (event %s) never reached the target (%s)", s.Index, s.Kind, s.ID, fate(s.ID))
		}
	}
}

func ordinal(n int) string {
	switch n {
	case 2:
		return "2nd"
	case 3:
		return "3rd"
	}
	return fmt.Sprintf("%dth", n)
}

func slicesContains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func checkGroupWrites(k *Key, writes []cyberarksim.Write, userNameOf map[string]string, fate func(string) string, add addFunc) {
	label := keyLabel(k)
	addIdx, remIdx := map[string]int{}, map[string]int{}
	for _, s := range k.Steps {
		for _, m := range s.Members {
			if s.Kind == GroupRemove {
				remIdx[m] = s.Index
			} else {
				addIdx[m] = s.Index
			}
		}
	}
	applied := map[string]int{} // "<step>/<member>", "1/" for the create itself
	last, lastSeq, posts := 0, uint64(0), 0
	var id string
	step := func(wr cyberarksim.Write, idx int, what, member string) {
		if idx < last {
			add("order", label, "write #%d %s (#%d %s) after write #%d had applied #%d %s", wr.Seq, what, idx, k.Steps[idx-1].Kind, lastSeq, last, k.Steps[last-1].Kind)
		} else {
			last, lastSeq = idx, wr.Seq
		}
		applied[fmt.Sprintf("%d/%s", idx, member)]++
	}
	for _, wr := range writes {
		switch wr.Method {
		case "POST":
			posts++
			if posts > 1 {
				add("duplicate-object", label, "write #%d POST created the group again (id %s, first %s); the sequence creates it once and never deletes it", wr.Seq, wr.ID, id)
			}
			id = wr.ID
			step(wr, 1, "create", "")
		case "PATCH", "PUT":
			if other := without(wr.Fields, "members"); len(other) > 0 {
				add("unexpected-write", label, "write #%d %s changed %v, which no event of the key sets", wr.Seq, wr.Method, other)
			}
			if wr.ID != id {
				add("order", label, "write #%d %s to id %s, not the group's id %q", wr.Seq, wr.Method, wr.ID, id)
			}
		case "DELETE":
			add("unexpected-write", label, "write #%d DELETE: no event deletes a group", wr.Seq)
			continue
		case "CASCADE":
			add("unexpected-write", label, "write #%d: members %v were removed because they were deleted; the member pool is never deleted", wr.Seq, names(wr.MembersRemoved, userNameOf))
			continue
		}
		for _, mid := range wr.MembersAdded {
			m := userNameOf[mid]
			idx, ok := addIdx[m]
			if !ok {
				add("unexpected-write", label, "write #%d %s added member %s, which no event adds", wr.Seq, wr.Method, nameOr(m, mid))
				continue
			}
			if n := applied[fmt.Sprintf("%d/%s", idx, m)]; n > 0 {
				add("order", label, "write #%d %s added member %s again (#%d %s was applied before)", wr.Seq, wr.Method, m, idx, k.Steps[idx-1].Kind)
			}
			step(wr, idx, "add "+m, m)
		}
		for _, mid := range wr.MembersRemoved {
			m := userNameOf[mid]
			idx, ok := remIdx[m]
			if !ok {
				add("order", label, "write #%d %s removed member %s, which no event removes", wr.Seq, wr.Method, nameOr(m, mid))
				continue
			}
			step(wr, idx, "remove "+m, m)
		}
	}
	for _, s := range k.Steps {
		if s.Kind == GroupCreate && applied["1/"] == 0 {
			add("unapplied", label, "#1 Create (event %s) never reached the target (%s)", s.ID, fate(s.ID))
		}
		for _, m := range s.Members {
			if applied[fmt.Sprintf("%d/%s", s.Index, m)] == 0 {
				add("unapplied", label, "#%d %s of %s (event %s) never reached the target (%s)", s.Index, s.Kind, m, s.ID, fate(s.ID))
			}
		}
	}
}

func without(list []string, drop string) []string {
	var out []string
	for _, s := range list {
		if s != drop {
			out = append(out, s)
		}
	}
	return out
}

func names(ids []string, userNameOf map[string]string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = nameOr(userNameOf[id], id)
	}
	return out
}

func nameOr(name, id string) string {
	if name == "" {
		return "id " + id
	}
	return name
}

// checkState compares the simulator's final state with what every sequence implies.
func checkState(w *Workload, ev *Evidence, add addFunc) {
	users := map[string][]SimUser{}
	userNameOf := map[string]string{}
	for _, u := range ev.Users {
		n := strings.ToLower(u.UserName)
		users[n] = append(users[n], u)
		userNameOf[u.ID] = n
	}
	groups := map[string][]SimGroup{}
	for _, g := range ev.Groups {
		n := strings.ToLower(g.DisplayName)
		groups[n] = append(groups[n], g)
	}
	known := map[string]bool{}
	for _, k := range w.Keys {
		label := keyLabel(k)
		exp := k.Expect()
		known[k.Object+"/"+k.Name] = true
		if k.Object == "User" {
			got := users[k.Name]
			switch {
			case len(got) > 1:
				add("duplicate-object", label, "%d users have this userName", len(got))
			case !exp.Exists && len(got) == 1:
				add("state", label, "exists with title %q, but its last event is a Delete (#%d)", got[0].Title, len(k.Steps))
			case exp.Exists && len(got) == 0:
				add("state", label, "absent, but its sequence leaves it with title %q", exp.Title)
			case exp.Exists && got[0].Title != exp.Title:
				add("state", label, "title %q, want %q", got[0].Title, exp.Title)
			}
			continue
		}
		got := groups[k.Name]
		switch {
		case len(got) > 1:
			add("duplicate-object", label, "%d groups have this displayName", len(got))
		case len(got) == 0:
			add("state", label, "absent, but its sequence creates it")
		default:
			have := map[string]bool{}
			for _, m := range got[0].Members {
				have[nameOr(userNameOf[m.Value], m.Value)] = true
			}
			var missing, extra []string
			for m := range exp.Members {
				if !have[m] {
					missing = append(missing, m)
				}
			}
			for m := range have {
				if !exp.Members[m] {
					extra = append(extra, m)
				}
			}
			if len(missing)+len(extra) > 0 {
				sort.Strings(missing)
				sort.Strings(extra)
				add("state", label, "members: missing %v, extra %v", missing, extra)
			}
		}
	}
	for n := range users {
		if !known["User/"+n] {
			add("unexpected-write", "User "+n, "exists in the target but no event names it")
		}
	}
	for n := range groups {
		if !known["Group/"+n] {
			add("unexpected-write", "Group "+n, "exists in the target but no event names it")
		}
	}
}
