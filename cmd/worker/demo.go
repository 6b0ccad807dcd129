package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/scimflow/scimflow/internal/config"
	"github.com/scimflow/scimflow/internal/cyberarksim"
	"github.com/scimflow/scimflow/internal/events"
	"github.com/scimflow/scimflow/internal/publish"
)

// cmdDemo is `worker demo`: the whole product in one process on the embedded default. It starts the
// CyberArk simulator, the embedded JetStream server and the worker (configured by the example
// config, pointed at the simulator), publishes the sample events, waits for every outcome, prints
// them with the simulator's final users and groups, stops everything, and exits 0 only when every
// valid event succeeded and every malformed one was dead-lettered.
func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, cfgFile := flags(helpDemo, stdout, stderr)
	*cfgFile = "deploy/examples/config.yaml"
	fs.Lookup("config").DefValue = *cfgFile
	eventsFile := fs.String("events", "deploy/examples/events.jsonl", "events to publish")
	dir := fs.String("dir", "", "working folder for the JetStream store (default: a new temporary folder, removed at the end)")
	timeout := fs.Duration("timeout", 2*time.Minute, "how long to wait for the outcomes")
	verbose := fs.Bool("v", false, "show the worker's log")
	if err := fs.Parse(args); err != nil {
		return err
	}
	start := time.Now()

	work := *dir
	if work == "" {
		tmp, err := os.MkdirTemp("", "scimflow-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		work = tmp
	}

	// The CyberArk simulator, on a free loopback port.
	sim, err := cyberarksim.New(cyberarksim.Config{})
	if err != nil {
		return fmt.Errorf("simulator: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	simSrv := &http.Server{Handler: sim, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = simSrv.Serve(ln) }()
	defer simSrv.Close()
	simURL := "http://" + ln.Addr().String()

	// The example configuration, pointed at the simulator and an embedded JetStream in work.
	defaults := map[string]string{"SCIMFLOW_CLIENT_ID": "scimflow-client", "SCIMFLOW_CLIENT_SECRET": "scimflow-secret"}
	lookup := func(name string) (string, bool) {
		if v, ok := os.LookupEnv(name); ok {
			return v, true
		}
		v, ok := defaults[name]
		return v, ok
	}
	cfg, err := config.Load(*cfgFile, config.Options{LookupEnv: lookup})
	if err != nil {
		return err
	}
	cfg.NATS.URL = ""
	cfg.NATS.Listen = "127.0.0.1:0"
	cfg.NATS.StoreDir = filepath.Join(work, "nats")
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.Target.BaseURI = rebase(cfg.Target.BaseURI, simURL)
	cfg.Target.Auth.OAuth2.TokenURL = rebase(cfg.Target.Auth.OAuth2.TokenURL, simURL)
	cfg.Target.Auth.OAuth2.RevokeURL = rebase(cfg.Target.Auth.OAuth2.RevokeURL, simURL)

	logOut := io.Discard
	if *verbose {
		logOut = stderr
	}
	log := newLogger(config.Log{Level: "info", Format: "console"}, logOut)
	fmt.Fprintf(stdout, "scimflow demo\n  simulator   %s (CyberArk profile)\n  config      %s\n  events      %s\n  work folder %s\n\n", simURL, *cfgFile, *eventsFile, work)

	a, err := startApp(ctx, cfg, log)
	if err != nil {
		return err
	}
	runCtx, stopWorker := context.WithCancel(ctx)
	workerDone := make(chan error, 1)
	go func() { workerDone <- a.serve(runCtx) }()
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		stopWorker()
		err := <-workerDone
		a.close(context.WithoutCancel(ctx))
		return err
	}
	defer stop()
	fmt.Fprintf(stdout, "worker started: embedded JetStream at %s, %d partitions\n", a.natsURL(), cfg.NATS.Partitions)

	f, err := os.Open(*eventsFile)
	if err != nil {
		return err
	}
	items, err := publish.ReadJSONL(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", *eventsFile, err)
	}
	nc, err := nats.Connect(a.natsURL(), nats.Name("scimflow-demo-publisher"))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "publishing %d events and waiting for their outcomes...\n\n", len(items))
	// The sample file's malformed event is there on purpose: the worker dead-letters it.
	rep, err := publish.Run(ctx, js, items, publish.Options{Wait: true, Timeout: *timeout,
		Invalid: publish.PublishInvalid, Source: *eventsFile})
	if err != nil {
		return err
	}
	if err := stop(); err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	return demoSummary(stdout, rep, sim, start, cmp.Or(*dir, os.TempDir()))
}

// demoTableMax is the most events whose outcomes the demo lists one per line; a bigger run's table
// goes to the full list file.
const demoTableMax = 100

// demoSummary prints the outcomes, the simulator's final state and the verdict, and returns
// exitError(1) when the verdict is a failure. When the terminal would not show everything (a long
// table, a shortened summary of failures), every event's status and full reason is written to a
// file in dir, named in the output.
func demoSummary(w io.Writer, rep *publish.Report, sim *cyberarksim.Server, start time.Time, dir string) error {
	verdict := demoVerdict(rep)
	var failure *demoFailure
	errors.As(verdict, &failure)
	fullList := ""
	if len(rep.Items) > demoTableMax || rep.Abridged() || (failure != nil && failure.abridged()) {
		path, err := writeDemoList(rep, dir)
		if err != nil {
			fmt.Fprintf(w, "(could not write the full list of outcomes: %v)\n", err)
		}
		fullList = path
	}
	renderOutcomes(w, rep, fullList)
	fmt.Fprintln(w)
	rep.Render(w, publish.RenderOptions{FullList: fullList})
	fmt.Fprintln(w)
	renderTarget(w, sim)
	if verdict == nil {
		verdict = checkReferences(w, rep, sim)
	}

	fmt.Fprintln(w)
	if verdict != nil {
		fmt.Fprintf(w, "DEMO FAILED after %s: %v\n", time.Since(start).Round(time.Millisecond), verdict)
		if fullList != "" {
			fmt.Fprintf(w, "Every event with its status and full reason: %s\n", fullList)
		}
		return exitError(1)
	}
	invalid := invalidCount(rep.Items)
	fmt.Fprintf(w, "DEMO PASSED in %s: %d valid events succeeded, %d malformed event(s) dead-lettered.\n",
		time.Since(start).Round(time.Millisecond), len(rep.Items)-invalid, invalid)
	return nil
}

// referencesShown is the most reference problems the demo names.
const referencesShown = 10

// checkReferences checks that every manager reference and group membership the events imply is
// set in the simulator, says so, and returns the failure when one is not.
func checkReferences(w io.Writer, rep *publish.Report, sim *cyberarksim.Server) error {
	checked, problems := expectedReferences(rep.Items).check(sim.Snapshot())
	if len(problems) == 0 {
		fmt.Fprintf(w, "References: the %d manager references and group memberships the events imply are all set.\n", checked)
		return nil
	}
	fmt.Fprintf(w, "References: %d of the %d the events imply are not as they say:\n", len(problems), checked)
	for _, p := range problems[:min(len(problems), referencesShown)] {
		fmt.Fprintf(w, "  %s\n", p)
	}
	if n := len(problems) - referencesShown; n > 0 {
		fmt.Fprintf(w, "  and %d more\n", n)
	}
	return fmt.Errorf("%d manager references or group memberships are not as the events say", len(problems))
}

// writeDemoList writes every event's status and full reason to a new file in dir.
func writeDemoList(rep *publish.Report, dir string) (string, error) {
	f, err := os.CreateTemp(dir, "scimflow-demo-outcomes-*.tsv")
	if err != nil {
		return "", err
	}
	if err := rep.WriteTSV(f); err != nil {
		f.Close()
		return "", fmt.Errorf("%s: %w", f.Name(), err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("%s: %w", f.Name(), err)
	}
	return f.Name(), nil
}

// rebase replaces scheme and host of u by those of base (the example config names the simulator's
// usual address; the demo's simulator listens on a free port).
func rebase(u, base string) string {
	if u == "" {
		return u
	}
	i := strings.Index(u, "://")
	if i < 0 {
		return u
	}
	rest := u[i+3:]
	if j := strings.IndexByte(rest, '/'); j >= 0 {
		return base + rest[j:]
	}
	return base
}

func invalidCount(items []publish.Item) int {
	n := 0
	for _, it := range items {
		if it.Invalid != nil {
			n++
		}
	}
	return n
}

// demoVerdict: every valid event succeeded (or was skipped as already done), every invalid one was
// dead-lettered. Otherwise it returns a *demoFailure.
func demoVerdict(rep *publish.Report) error {
	var problems []demoProblem
	for _, it := range rep.Items {
		o, ok := rep.Outcomes[it.ID]
		switch {
		case !ok:
			problems = append(problems, demoProblem{it, "no outcome"})
		case it.Invalid != nil && o.Status != events.StatusDeadLettered:
			problems = append(problems, demoProblem{it, "malformed but " + string(o.Status)})
		case it.Invalid == nil && !publish.Succeeded(o):
			what := string(o.Status)
			if o.Error != nil {
				what += ": " + o.Error.Class + ": " + o.Error.Message
			} else if o.Reason != "" {
				what += ": " + o.Reason
			}
			problems = append(problems, demoProblem{it, what})
		}
	}
	if len(problems) > 0 {
		return &demoFailure{problems: problems, total: len(rep.Items)}
	}
	return nil
}

// demoProblem is one event that did not end as the demo expects, and what became of it instead.
type demoProblem struct {
	item publish.Item
	what string
}

// demoFailure is a failed verdict. Its message summarises the problems by what went wrong, with a
// few example events each, so that thousands of problems still make a short message.
type demoFailure struct {
	problems []demoProblem
	total    int
}

// Limits of the verdict's summary.
const (
	verdictGroups   = 8
	verdictExamples = 3
	verdictWidth    = 160
)

type demoGroup struct {
	what     string
	problems []demoProblem
}

func (f *demoFailure) groups() []*demoGroup {
	var groups []*demoGroup
	by := map[string]*demoGroup{}
	for _, p := range f.problems {
		what := strings.Join(strings.Fields(p.what), " ")
		g := by[what]
		if g == nil {
			g = &demoGroup{what: what}
			by[what] = g
			groups = append(groups, g)
		}
		g.problems = append(g.problems, p)
	}
	sort.SliceStable(groups, func(i, j int) bool { return len(groups[i].problems) > len(groups[j].problems) })
	return groups
}

// abridged reports whether the message leaves problems or reason text out.
func (f *demoFailure) abridged() bool {
	groups := f.groups()
	if len(groups) > verdictGroups {
		return true
	}
	for _, g := range groups {
		if len(g.problems) > verdictExamples || len([]rune(g.what)) > verdictWidth {
			return true
		}
	}
	return false
}

func (f *demoFailure) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d of %d events did not end as expected:", len(f.problems), f.total)
	groups := f.groups()
	for _, g := range groups[:min(len(groups), verdictGroups)] {
		what := g.what
		if r := []rune(what); len(r) > verdictWidth {
			what = string(r[:verdictWidth-1]) + "…"
		}
		examples := make([]string, 0, verdictExamples)
		for _, p := range g.problems[:min(len(g.problems), verdictExamples)] {
			examples = append(examples, fmt.Sprintf("line %d (%s)", p.item.Line, p.item.ID))
		}
		fmt.Fprintf(&b, "\n  %d × %s: %s", len(g.problems), what, strings.Join(examples, ", "))
		if n := len(g.problems) - verdictExamples; n > 0 {
			fmt.Fprintf(&b, " and %d more", n)
		}
	}
	if n := len(groups) - verdictGroups; n > 0 {
		rest := 0
		for _, g := range groups[verdictGroups:] {
			rest += len(g.problems)
		}
		fmt.Fprintf(&b, "\n  and %d more kinds of problem (%d events)", n, rest)
	}
	return b.String()
}

// renderOutcomes lists every event with its outcome and the requests it caused; more than
// demoTableMax events are only counted here, their table is in the full list file.
func renderOutcomes(w io.Writer, rep *publish.Report, fullList string) {
	if len(rep.Items) > demoTableMax {
		where := "not written"
		if fullList != "" {
			where = "in " + fullList
		}
		fmt.Fprintf(w, "Outcomes of %d events: too many to list here; the full list is %s.\n", len(rep.Items), where)
		return
	}
	fmt.Fprintln(w, "Outcomes, in file order:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  LINE\tEVENT\tCHANGE\tKEY\tSTATUS\tREQUESTS")
	for _, it := range rep.Items {
		change := "(malformed)"
		if it.Invalid == nil {
			change = changeOf(it)
		}
		status, calls := "no outcome", ""
		if o, ok := rep.Outcomes[it.ID]; ok {
			status = string(o.Status)
			var parts []string
			for _, c := range o.Requests {
				parts = append(parts, fmt.Sprintf("%s %d", c.Method, c.Status))
			}
			calls = strings.Join(parts, ", ")
			if o.Status == events.StatusSkipped {
				calls = o.Reason
			}
		}
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\t%s\n", it.Line, it.ID, change, events.KeyString(it.Key), status, calls)
	}
	tw.Flush()
}

func changeOf(it publish.Item) string {
	ev, err := events.Decode(it.Raw)
	if err != nil {
		return "?"
	}
	return ev.Data.Object + " " + ev.Data.Operation
}

// renderTarget prints the simulator's final users and groups.
func renderTarget(w io.Writer, sim *cyberarksim.Server) {
	st := sim.Snapshot()
	byID := map[string]string{}
	for _, u := range st.Users {
		byID[str(u["id"])] = str(u["userName"])
	}
	fmt.Fprintf(w, "CyberArk (simulated) now holds %d users and %d groups.\n", len(st.Users), len(st.Groups))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  USER\tNAME\tTITLE\tACTIVE\tEMAILS")
	users := append([]map[string]any(nil), st.Users...)
	sort.Slice(users, func(i, j int) bool { return str(users[i]["userName"]) < str(users[j]["userName"]) })
	for _, u := range users {
		name, _ := u["name"].(map[string]any)
		var emails []string
		if es, ok := u["emails"].([]any); ok {
			for _, e := range es {
				if em, ok := e.(map[string]any); ok {
					emails = append(emails, str(em["value"]))
				}
			}
		}
		fmt.Fprintf(tw, "  %s\t%s %s\t%s\t%v\t%s\n", str(u["userName"]), str(name["givenName"]), str(name["familyName"]),
			str(u["title"]), u["active"], strings.Join(emails, " "))
	}
	tw.Flush()
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  GROUP\tMEMBERS")
	groups := append([]map[string]any(nil), st.Groups...)
	sort.Slice(groups, func(i, j int) bool { return str(groups[i]["displayName"]) < str(groups[j]["displayName"]) })
	for _, g := range groups {
		var members []string
		if ms, ok := g["members"].([]any); ok {
			for _, m := range ms {
				if mm, ok := m.(map[string]any); ok {
					members = append(members, byID[str(mm["value"])])
				}
			}
		}
		sort.Strings(members)
		fmt.Fprintf(tw, "  %s\t%s\n", str(g["displayName"]), strings.Join(members, " "))
	}
	tw.Flush()
	stats := sim.Stats()
	fmt.Fprintf(w, "The simulator answered %d requests (%s) and issued %d token(s).\n", total(stats.ByStatus), statusList(stats.ByStatus), stats.TokensIssued)
}

func str(v any) string {
	if v == nil {
		return ""
	}
	if s, ok := v.(string); ok {
		return s
	}
	return fmt.Sprint(v)
}

func total(m map[int]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func statusList(m map[int]int) string {
	codes := make([]int, 0, len(m))
	for c := range m {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	parts := make([]string, len(codes))
	for i, c := range codes {
		parts[i] = fmt.Sprintf("%d×%d", m[c], c)
	}
	return strings.Join(parts, ", ")
}
