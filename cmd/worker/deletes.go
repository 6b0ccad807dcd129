package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/scimflow/scimflow/internal/cli"
	"github.com/scimflow/scimflow/internal/events"
)

var helpDeletes = &cli.Command{
	Name:    "worker deletes",
	Summary: "list the deletes the deletion guard holds; approve or reject them",
	Usage:   "worker deletes list | worker deletes approve (--key K ... | --all) | worker deletes reject (--key K ... | --all) [--config FILE | --nats URL]",
	Description: `More deletes (or disables, active: false) in one sync window than deletionGuard allows are held:
no request is sent, the event gets the progress outcome 'held', and it waits in IDM_PARKED with its
key's later events behind it. 'list' prints the held deletes. 'approve' lets them through: each is
planned again against the target and applied once, and its key's later events follow. 'reject' gives
each the final outcome 'rejected' (nothing is sent) and lets the key's later events proceed. A key
is named by object and key (--key User/userName=ada@example.com) or by its stored subject as 'list'
prints it. The workers owning the keys act; with none running the command says so.`,
	Examples: []string{
		"worker deletes list --config deploy/examples/config.yaml",
		"worker deletes approve --all",
		"worker deletes reject --key User/userName=breakglass@example.com",
	},
	Env: []cli.Env{{Name: "${NAME}", Meaning: "variables the configuration's nats section names"}},
}

// cmdDeletes is `worker deletes list|approve|reject`.
func cmdDeletes(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	ops := []string{"list", "approve", "reject"}
	if len(args) > 0 && isHelpFlag(args[0]) {
		return helpDeletes.FlagSet(stdout, stderr).Parse(args[:1])
	}
	if len(args) == 0 || !slices.Contains(ops, args[0]) {
		return helpDeletes.FlagSet(stdout, stderr).Fail("want 'worker deletes list', 'approve' or 'reject'")
	}
	op, args := args[0], args[1:]
	fs := helpDeletes.FlagSet(stdout, stderr)
	conn := addConnFlags(fs)
	var keys stringList
	fs.Var(&keys, "key", "the key, as `Object/name=value` or a stored subject (repeat for several)")
	all := fs.Bool("all", false, "every held delete")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if op != "list" && len(keys) == 0 && !*all {
		return fs.Fail("%s needs --key or --all", op)
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
		return listHeld(ctx, store, stdout)
	}
	subjects, err := keySubjects(ctx, store, keys)
	if err != nil {
		return err
	}
	return controlParked(ctx, nc, events.Control{Op: op, Subjects: subjects, All: *all}, stdout)
}

func listHeld(ctx context.Context, store *events.ParkStore, w io.Writer) error {
	states, err := store.States(ctx, -1)
	if err != nil {
		return err
	}
	slices.SortFunc(states, func(a, b *events.KeyState) int { return a.Since.Compare(b.Since) })
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "OBJECT\tKEY\tEVENT\tWAITING BEHIND IT\tSINCE\tREASON\n")
	n := 0
	for _, st := range states {
		if st.Hold != events.HoldDelete {
			continue
		}
		evs, err := store.Parked(ctx, st.Subject)
		if err != nil {
			return err
		}
		var behind []string
		for _, e := range evs {
			if e.StreamSeq != st.HeadSeq {
				behind = append(behind, e.MsgID)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", st.Object, events.KeyString(st.Key), st.HeadEvent,
			cmpOr(strings.Join(behind, ","), "-"), st.Since.UTC().Format(time.RFC3339), st.Reason)
		n++
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "%d held delete(s)\n", n)
	return nil
}

// isHelpFlag says whether arg asks for help (-h, --help, -help).
func isHelpFlag(arg string) bool {
	return arg == "-h" || arg == "--help" || arg == "-help"
}
