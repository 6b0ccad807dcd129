package main

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"

	"github.com/scimflow/scimflow/internal/events"
)

// The workload: every key is a known sequence of events, so that what the target must look like
// at the end, and in which order writes may reach it, follows from the sequence alone.
//
// Users (key userName): Create with title "v1", Updates that set title "v<i>" where i is the
// event's place in the key's sequence (so titles only ever grow), and, for users outside the
// member pool, some Deletes each followed later by a Create again (title "v<i>" too). A User's
// last event may be a Delete.
//
// Groups (key displayName): Create (with zero or one initial member), then AddAssignment and
// RemoveAssignment of one member each; a member is added at most once and removed at most once,
// after its add, so each membership change names exactly one event. Members come from a pool of
// users that are created first (their Creates lead the publish order) and never deleted.

// Kind is what an event of the workload does.
type Kind int

// Kinds of events.
const (
	UserCreate Kind = iota + 1
	UserUpdate
	UserDelete
	GroupCreate
	GroupAdd
	GroupRemove
)

func (k Kind) String() string {
	return [...]string{"?", "Create", "Update", "Delete", "Create", "AddAssignment", "RemoveAssignment"}[k]
}

// Step is one event of a key's sequence.
type Step struct {
	Key   *Key
	Index int // 1-based place in the key's sequence
	Kind  Kind
	// Title is set by UserCreate and UserUpdate: "v<Index>".
	Title string
	// Members are the userNames a group event adds (GroupCreate, GroupAdd) or removes.
	Members []string
	// ID is the event id, unique in the run.
	ID string
}

// Key is one object key and its sequence.
type Key struct {
	Object string // "User" or "Group"
	Name   string // userName or displayName (lower case)
	Pool   bool   // a member-pool user: created first, never deleted
	Steps  []*Step
}

// Label names a step for people: User chaos-u0001@example.com #3 Update.
func (s *Step) Label() string {
	return fmt.Sprintf("%s %s #%d %s", s.Key.Object, s.Key.Name, s.Index, s.Kind)
}

// Workload is the whole run's input.
type Workload struct {
	Keys  []*Key
	Order []*Step // publish order: each key's steps in order, keys interleaved
	ByID  map[string]*Step
	Users int
	Group int
	Pool  int
}

// WorkloadConfig sizes a workload.
type WorkloadConfig struct {
	Seed   uint64
	Keys   int // total keys, at least 20
	Events int // total events, at least 4 per key
	RunID  string
}

// Generate builds the workload of cfg; the same config gives the same workload.
func Generate(cfg WorkloadConfig) (*Workload, error) {
	if cfg.Keys < 20 {
		return nil, fmt.Errorf("keys %d: at least 20", cfg.Keys)
	}
	if cfg.Events < 4*cfg.Keys {
		return nil, fmt.Errorf("events %d: at least 4 per key (%d)", cfg.Events, 4*cfg.Keys)
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x5eed0fc4a05))
	groups := max(2, cfg.Keys/10)
	users := cfg.Keys - groups
	pool := min(max(10, users/6), 300)

	// Sequence lengths around the mean, adjusted to sum to exactly cfg.Events.
	mean := cfg.Events / cfg.Keys
	lengths := make([]int, cfg.Keys)
	total := 0
	for i := range lengths {
		lengths[i] = max(3, mean-4+rng.IntN(9))
		total += lengths[i]
	}
	const maxLen = 60
	for guard := 0; total != cfg.Events && guard < 100*cfg.Events; guard++ {
		i := rng.IntN(cfg.Keys)
		switch {
		case total < cfg.Events && lengths[i] < maxLen:
			lengths[i]++
			total++
		case total > cfg.Events && lengths[i] > 3:
			lengths[i]--
			total--
		}
	}
	if total != cfg.Events {
		return nil, fmt.Errorf("events %d over %d keys: cannot size the sequences (at most %d per key)", cfg.Events, cfg.Keys, maxLen)
	}

	w := &Workload{ByID: map[string]*Step{}, Users: users, Group: groups, Pool: pool}
	var poolNames []string
	for u := range users {
		k := &Key{Object: "User", Name: fmt.Sprintf("chaos-u%05d@example.com", u+1), Pool: u < pool}
		if k.Pool {
			poolNames = append(poolNames, k.Name)
		}
		exists := false
		for i := 1; i <= lengths[u]; i++ {
			s := &Step{Key: k, Index: i}
			switch {
			case !exists:
				s.Kind, exists = UserCreate, true
			case !k.Pool && i > 2 && rng.IntN(100) < 12:
				s.Kind, exists = UserDelete, false
			default:
				s.Kind = UserUpdate
			}
			if s.Kind != UserDelete {
				s.Title = "v" + strconv.Itoa(i)
			}
			k.Steps = append(k.Steps, s)
		}
		w.Keys = append(w.Keys, k)
	}
	for g := range groups {
		k := &Key{Object: "Group", Name: fmt.Sprintf("chaos-g%04d", g+1)}
		unused := slices.Clone(poolNames)
		rng.Shuffle(len(unused), func(i, j int) { unused[i], unused[j] = unused[j], unused[i] })
		var in []string
		n := min(lengths[users+g], 2*len(unused))
		for i := 1; i <= n; i++ {
			s := &Step{Key: k, Index: i}
			switch {
			case i == 1:
				s.Kind = GroupCreate
				if rng.IntN(2) == 0 {
					s.Members, unused, in = []string{unused[0]}, unused[1:], append(in, unused[0])
				}
			case len(in) > 0 && (len(unused) == 0 || rng.IntN(100) < 35):
				j := rng.IntN(len(in))
				s.Kind, s.Members = GroupRemove, []string{in[j]}
				in = slices.Delete(in, j, j+1)
			default:
				s.Kind = GroupAdd
				s.Members, unused, in = []string{unused[0]}, unused[1:], append(in, unused[0])
			}
			k.Steps = append(k.Steps, s)
		}
		w.Keys = append(w.Keys, k)
	}
	for ki, k := range w.Keys {
		for _, s := range k.Steps {
			s.ID = fmt.Sprintf("chaos-%s-k%04d-%02d", cfg.RunID, ki, s.Index)
			w.ByID[s.ID] = s
		}
	}

	// Publish order: the pool's Creates first (groups refer to them), then every remaining step,
	// keys interleaved at random, each key's steps in order.
	next := make([]int, len(w.Keys))
	for ki, k := range w.Keys {
		if k.Pool {
			w.Order = append(w.Order, k.Steps[0])
			next[ki] = 1
		}
	}
	rng.Shuffle(len(w.Order), func(i, j int) { w.Order[i], w.Order[j] = w.Order[j], w.Order[i] })
	// Draw keys weighted by the steps they have left, so that keys finish around the same time.
	var bag []int
	for ki, k := range w.Keys {
		for range len(k.Steps) - next[ki] {
			bag = append(bag, ki)
		}
	}
	rng.Shuffle(len(bag), func(i, j int) { bag[i], bag[j] = bag[j], bag[i] })
	for _, ki := range bag {
		w.Order = append(w.Order, w.Keys[ki].Steps[next[ki]])
		next[ki]++
	}
	return w, nil
}

// Event is the step as the event published.
func (s *Step) Event() *events.Event {
	ch := events.Change{Object: s.Key.Object, Operation: s.Kind.String()}
	switch s.Key.Object {
	case "User":
		ch.Key = map[string]any{"userName": s.Key.Name}
		if s.Title != "" {
			ch.Attributes = map[string]any{"title": s.Title}
		}
	case "Group":
		ch.Key = map[string]any{"displayName": s.Key.Name}
		if len(s.Members) > 0 {
			ms := make([]any, len(s.Members))
			for i, m := range s.Members {
				ms[i] = m
			}
			ch.Attributes = map[string]any{"members[].value": ms}
		}
	}
	return events.NewEvent(s.ID, "/chaos", ch)
}

// Expected is the final state a key's sequence implies.
type Expected struct {
	Exists  bool
	Title   string          // users
	Members map[string]bool // groups: userNames
}

// Expect computes the final state of k.
func (k *Key) Expect() Expected {
	e := Expected{}
	if k.Object == "Group" {
		e.Members = map[string]bool{}
	}
	for _, s := range k.Steps {
		switch s.Kind {
		case UserCreate, UserUpdate:
			e.Exists, e.Title = true, s.Title
		case UserDelete:
			e.Exists, e.Title = false, ""
		case GroupCreate, GroupAdd:
			e.Exists = true
			for _, m := range s.Members {
				e.Members[m] = true
			}
		case GroupRemove:
			for _, m := range s.Members {
				delete(e.Members, m)
			}
		}
	}
	return e
}

// titleIndex reads "v<i>" back to i; 0 when it is not such a title.
func titleIndex(title string) int {
	n, err := strconv.Atoi(strings.TrimPrefix(title, "v"))
	if err != nil || !strings.HasPrefix(title, "v") || n < 1 {
		return 0
	}
	return n
}
