package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/scimflow/scimflow/internal/cli"
	"github.com/scimflow/scimflow/internal/events"
)

var helpParked = &cli.Command{
	Name:    "worker parked",
	Summary: "list parked keys, or ask their workers to retry them now",
	Usage:   "worker parked list [--object O] [--json] | worker parked retry (--key K ... | --all) [--config FILE | --nats URL]",
	Description: `A key whose event failed in a way only time can fix (408, 429, 5xx, a timeout, a reference that
never appeared) is parked until the next sync window: the event and every later event of the key wait
in the IDM_PARKED stream, in order, while other keys go on. 'list' prints each parked key with its
waiting events, why it is parked, the windows its first event has spent and when the next starts.
'retry' asks the workers that own the keys to run them now instead of at the next window (it counts
as a window). A key is named by its stored subject as 'list' prints it, or by object and key:
--key User/userName=ada@example.com.`,
	Examples: []string{
		"worker parked list --config deploy/examples/config.yaml",
		"worker parked retry --key User/userName=ada@example.com",
		"worker parked retry --all",
	},
	Env: []cli.Env{{Name: "${NAME}", Meaning: "variables the configuration's nats section names"}},
}

// cmdParked is `worker parked list|retry`.
func cmdParked(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "list" && args[0] != "retry" && !strings.HasPrefix(args[0], "-")) {
		fs := helpParked.FlagSet(stdout, stderr)
		return fs.Fail("want 'worker parked list' or 'worker parked retry'")
	}
	op := "list"
	if !strings.HasPrefix(args[0], "-") {
		op, args = args[0], args[1:]
	}
	fs := helpParked.FlagSet(stdout, stderr)
	conn := addConnFlags(fs)
	object := fs.String("object", "", "list: only keys of this `OBJECT`")
	var keys stringList
	fs.Var(&keys, "key", "retry: the key, as `Object/name=value` or a stored subject (repeat for several)")
	all := fs.Bool("all", false, "retry: every parked key")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if op == "retry" && len(keys) == 0 && !*all {
		return fs.Fail("retry needs --key or --all")
	}
	nc, js, err := conn.dial()
	if err != nil {
		return err
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	store, err := events.OpenParkStore(ctx, js, 0)
	if err != nil {
		return err
	}
	if op == "list" {
		return listParked(ctx, store, *object, stdout)
	}
	subjects, err := keySubjects(ctx, store, keys)
	if err != nil {
		return err
	}
	return controlParked(ctx, nc, events.Control{Op: "retry", Subjects: subjects, All: *all}, stdout)
}

func listParked(ctx context.Context, store *events.ParkStore, object string, w io.Writer) error {
	states, err := store.States(ctx, -1)
	if err != nil {
		return err
	}
	slices.SortFunc(states, func(a, b *events.KeyState) int { return a.Since.Compare(b.Since) })
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "OBJECT\tKEY\tHOLD\tEVENTS\tWINDOWS\tNEXT WINDOW\tSINCE\tREASON\n")
	n := 0
	for _, st := range states {
		if object != "" && !strings.EqualFold(st.Object, object) {
			continue
		}
		evs, err := store.Parked(ctx, st.Subject)
		if err != nil {
			return err
		}
		ids := make([]string, len(evs))
		for i, e := range evs {
			ids[i] = e.MsgID
		}
		next := "-"
		if !st.NextWindow.IsZero() {
			next = st.NextWindow.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", st.Object, events.KeyString(st.Key), st.Hold,
			strings.Join(ids, ","), st.Windows, next, st.Since.UTC().Format(time.RFC3339), st.Reason)
		n++
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "%d parked key(s)\n", n)
	return nil
}

// keySubjects turns --key values into stored subjects: a subject as listed, or Object/name=value.
func keySubjects(ctx context.Context, store *events.ParkStore, keys []string) ([]string, error) {
	states, err := store.States(ctx, -1)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, k := range keys {
		if strings.HasPrefix(k, events.PartitionedPrefix+".") {
			out = append(out, k)
			continue
		}
		object, kv, ok := strings.Cut(k, "/")
		name, value, ok2 := strings.Cut(kv, "=")
		if !ok || !ok2 {
			return nil, fmt.Errorf("--key %q: want Object/name=value (User/userName=ada@example.com) or a stored subject", k)
		}
		tok := events.KeyToken(map[string]any{name: value})
		found := false
		for _, st := range states {
			if strings.EqualFold(st.Object, object) && strings.HasSuffix(st.Subject, "."+tok) {
				out, found = append(out, st.Subject), true
			}
		}
		if !found {
			return nil, fmt.Errorf("--key %q: no such parked key", k)
		}
	}
	return out, nil
}

func controlParked(ctx context.Context, nc *nats.Conn, req events.Control, w io.Writer) error {
	// The provisioning log says who: the command and the host it ran on.
	host, _ := os.Hostname()
	cmdName := "worker deletes " + req.Op
	if req.Op == "retry" {
		cmdName = "worker parked retry"
	}
	req.By = cmdName + "@" + host
	replies, err := events.RequestControl(ctx, nc, req, time.Second)
	if err != nil {
		return err
	}
	if len(replies) == 0 {
		return fmt.Errorf("no worker answered: the keys' partitions are owned by no running worker (start one; it takes them at their next window)")
	}
	total := 0
	for _, r := range replies {
		total += len(r.Keys)
		for _, k := range r.Keys {
			fmt.Fprintf(w, "%s\t%s\t%s\n", req.Op, r.Worker, k)
		}
	}
	fmt.Fprintf(w, "%d key(s) released by %d worker(s)\n", total, len(replies))
	if total == 0 {
		return exitError(1)
	}
	return nil
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }
