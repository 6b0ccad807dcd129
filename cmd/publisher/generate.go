package main

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/scimflow/scimflow/internal/events"
)

// runGenerate writes synthetic HR events in four phases separated by #wait lines: users joining
// (with a manager) and groups, memberships, movers, then leavers (disabled, removed from their
// groups, deleted).
func runGenerate(args []string, stdout, stderr io.Writer) error {
	fs := helpGenerate.FlagSet(stdout, stderr)
	var (
		users   = fs.Int("users", 100, "users to create")
		groups  = fs.Int("groups", 5, "groups to create")
		members = fs.Int("members", 3, "groups each user joins at most")
		changes = fs.Float64("changes", 0.2, "share of users who then change title")
		leavers = fs.Float64("leavers", 0.05, "share of users who leave: disabled, removed from their groups, deleted")
		domain  = fs.String("domain", "example.com", "e-mail domain")
		seed    = fs.Uint64("seed", 1, "random seed: the same seed writes the same file")
		prefix  = fs.String("id-prefix", "gen", "prefix of event ids")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *users < 0 || *groups < 0 || *members < 0 {
		return fmt.Errorf("generate: counts must not be negative")
	}
	w := bufio.NewWriter(stdout)
	defer w.Flush()
	g := &generator{w: w, rnd: rand.New(rand.NewPCG(*seed, *seed^0x9e3779b97f4a7c15)), prefix: *prefix,
		at: time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)}

	userNames := make([]string, *users)
	for i := range *users {
		given, family := firstNames[g.rnd.IntN(len(firstNames))], lastNames[g.rnd.IntN(len(lastNames))]
		user := fmt.Sprintf("%s.%s%d@%s", strings.ToLower(given), strings.ToLower(family), i, *domain)
		userNames[i] = user
		attrs := map[string]any{
			"name.givenName":  given,
			"name.familyName": family,
			"displayName":     given + " " + family,
			"title":           titles[g.rnd.IntN(len(titles))],
			"emails[].value":  []any{user},
			"emails[].type":   []any{"work"},
			"active":          true,
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": fmt.Sprintf("E%06d", i+1),
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department":     departments[g.rnd.IntN(len(departments))],
		}
		if i > 0 {
			attrs["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value"] = userNames[g.rnd.IntN(i)]
		}
		if err := g.emit(events.Change{Object: "User", Operation: events.OpCreate, Key: map[string]any{"userName": user}, Attributes: attrs}); err != nil {
			return err
		}
	}
	groupNames := make([]string, *groups)
	for i := range *groups {
		groupNames[i] = fmt.Sprintf("%s-%d", departments[i%len(departments)], i)
		if err := g.emit(events.Change{Object: "Group", Operation: events.OpCreate, Key: map[string]any{"displayName": groupNames[i]}}); err != nil {
			return err
		}
	}
	// #wait lines separate the phases, as days separate them in a real feed: with --wait the
	// publisher sends a phase only when the one before it is done (see publish.ReadJSONL).
	fmt.Fprintln(w, "#wait memberships")
	memberOf := map[string][]string{}
	if *groups > 0 {
		for _, u := range userNames {
			for range g.rnd.IntN(*members + 1) {
				grp := groupNames[g.rnd.IntN(*groups)]
				if contains(memberOf[u], grp) {
					continue
				}
				memberOf[u] = append(memberOf[u], grp)
				if err := g.emit(events.Change{Object: "Group", Operation: events.OpAddAssignment,
					Key: map[string]any{"displayName": grp}, Attributes: map[string]any{"members[].value": []any{u}}}); err != nil {
					return err
				}
			}
		}
	}
	fmt.Fprintln(w, "#wait movers")
	for _, u := range userNames {
		if g.rnd.Float64() < *changes {
			if err := g.emit(events.Change{Object: "User", Operation: events.OpUpdate, Key: map[string]any{"userName": u},
				Attributes: map[string]any{"title": titles[g.rnd.IntN(len(titles))]}}); err != nil {
				return err
			}
		}
	}
	fmt.Fprintln(w, "#wait leavers")
	for _, u := range userNames {
		if g.rnd.Float64() >= *leavers {
			continue
		}
		if err := g.emit(events.Change{Object: "User", Operation: events.OpUpdate, Key: map[string]any{"userName": u},
			Attributes: map[string]any{"active": false}}); err != nil {
			return err
		}
		for _, grp := range memberOf[u] {
			if err := g.emit(events.Change{Object: "Group", Operation: events.OpRemoveAssignment,
				Key: map[string]any{"displayName": grp}, Attributes: map[string]any{"members[].value": []any{u}}}); err != nil {
				return err
			}
		}
		if err := g.emit(events.Change{Object: "User", Operation: events.OpDelete, Key: map[string]any{"userName": u}}); err != nil {
			return err
		}
	}
	return nil
}

type generator struct {
	w      io.Writer
	rnd    *rand.Rand
	prefix string
	n      int
	at     time.Time
}

func (g *generator) emit(ch events.Change) error {
	g.n++
	ev := events.NewEvent(fmt.Sprintf("%s-%06d", g.prefix, g.n), "/hr/synthetic", ch)
	g.at = g.at.Add(time.Second)
	ev.Time = g.at
	raw, err := ev.Encode()
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(g.w, "%s\n", raw)
	return err
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

var (
	firstNames  = []string{"Ada", "Alan", "Barbara", "Claude", "Dennis", "Edsger", "Frances", "Grace", "Hedy", "John", "Katherine", "Ken", "Linus", "Margaret", "Niklaus", "Radia", "Shafi", "Tim", "Whitfield", "Yukihiro"}
	lastNames   = []string{"Lovelace", "Turing", "Liskov", "Shannon", "Ritchie", "Dijkstra", "Allen", "Hopper", "Lamarr", "McCarthy", "Johnson", "Thompson", "Torvalds", "Hamilton", "Wirth", "Perlman", "Goldwasser", "Berners-Lee", "Diffie", "Matsumoto"}
	titles      = []string{"Engineer", "Senior Engineer", "Analyst", "Manager", "Director", "Architect", "Administrator", "Consultant"}
	departments = []string{"Engineering", "Finance", "Operations", "Sales", "Security", "Support"}
)
