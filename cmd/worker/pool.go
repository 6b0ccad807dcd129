package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/scimflow/scimflow/internal/cli"
	"github.com/scimflow/scimflow/internal/config"
	"github.com/scimflow/scimflow/internal/events"
)

var helpPool = &cli.Command{
	Name:    "worker pool",
	Summary: "show the workers of the pool and which partitions each owns",
	Usage:   "worker pool [--config FILE | --nats URL]",
	Description: `Reads the pool's membership (the IDM_POOL key-value bucket, where every running worker renews
its entry each second; an entry expires 10 s after its worker stopped renewing) and prints each
member with the partitions rendezvous hashing gives it and the partitions it holds (those it
consumes, and one it is handing over until its last event there is done), then each partition
with its owner, the worker the server has pinned it to, and its events not yet acknowledged and
not yet delivered. A member's STATE is "leaving" while it shuts down: it owns nothing, but the
others run none of the partitions it still holds until it is gone. It is "settling" after it
started or its view of the bucket was interrupted (a JetStream server down, say), until it has
read the bucket for 10 s or seen another member "live": until then a partition that ran before
does not open for it merely because no member claims it. A member whose entry vanished without a
delete (a worker killed, or a JetStream server down longer than the entries' TTL) is no longer
listed, but the workers that still count it in, with its partitions, for a grace of a few
seconds are named below the members.
Workers started with worker.partitions (a static split) are not members of the pool.`,
	Examples: []string{
		"worker pool --config deploy/examples/config.yaml",
		"worker pool --nats nats://nats-0:4222",
	},
	Env: []cli.Env{{Name: "${NAME}", Meaning: "variables the configuration's nats section names"}},
}

// cmdPool is `worker pool`.
func cmdPool(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := helpPool.FlagSet(stdout, stderr)
	conn := addConnFlags(fs)
	consumer := fs.String("consumer", events.DefaultConsumerName, "durable consumer name `PREFIX` (nats.consumer)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fs.Fail("unexpected arguments %q", fs.Args())
	}
	nc, js, err := conn.dial()
	if err != nil {
		return err
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return renderPool(ctx, js, *consumer, stdout)
}

// poolView is the pool as `worker pool` and GET /pool show it: the live members with the
// partitions rendezvous hashing gives each, and every partition's owner, pin and backlog.
type poolView struct {
	Members    []poolEntry     `json:"members"`
	Partitions []partitionView `json:"partitions"`
	// Problems names the entries of the pool bucket that are not a member's (ignored).
	Problems []string `json:"problems,omitempty"`
}

type poolEntry struct {
	events.Member
	Partitions []int `json:"partitions"`
}

type partitionView struct {
	Partition int    `json:"partition"`
	Owner     string `json:"owner,omitempty"`
	// PinnedTo is the pin id the server gave the partition's consumer ("" when none).
	PinnedTo string `json:"pinnedTo,omitempty"`
	// Unacked and Pending are the consumer's NumAckPending and NumPending; -1 when its info
	// could not be read.
	Unacked int    `json:"unacked"`
	Pending uint64 `json:"pending"`
}

// readPool reads the pool's members and every partition's consumer info.
func readPool(ctx context.Context, js jetstream.JetStream, consumer string) (*poolView, error) {
	members, err := events.ReadPool(ctx, js)
	var problems []string
	if err != nil && members == nil {
		return nil, fmt.Errorf("%w (is a worker running without worker.partitions?)", err)
	} else if err != nil {
		problems = strings.Split(err.Error(), "\n")
	}
	st, err := js.Stream(ctx, events.EventsStream)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", events.EventsStream, err)
	}
	n := events.Topology{}.PartitionCount()
	if tr := st.CachedInfo().Config.SubjectTransform; tr != nil {
		fmt.Sscanf(tr.Destination[strings.Index(tr.Destination, "partition(")+len("partition("):], "%d", &n)
	}
	var names []string
	for _, m := range members {
		if !m.Leaving {
			names = append(names, m.Name)
		}
	}
	assign := events.Assign(names, n)
	owner := map[int]string{}
	for m, ps := range assign {
		for _, p := range ps {
			owner[p] = m
		}
	}
	v := &poolView{Members: make([]poolEntry, len(members)), Partitions: make([]partitionView, n), Problems: problems}
	for i, m := range members {
		v.Members[i] = poolEntry{Member: m, Partitions: cmpOrSlice(assign[m.Name])}
	}
	for p := range n {
		pv := partitionView{Partition: p, Owner: owner[p], Unacked: -1}
		if cons, err := st.Consumer(ctx, fmt.Sprintf("%s-p%d", consumer, p)); err == nil {
			if ci, err := cons.Info(ctx); err == nil {
				pv.Unacked, pv.Pending = ci.NumAckPending, ci.NumPending
				for _, g := range ci.PriorityGroups {
					if g.PinnedClientID != "" {
						pv.PinnedTo = g.PinnedClientID
					}
				}
			}
		}
		v.Partitions[p] = pv
	}
	return v, nil
}

func cmpOrSlice(ps []int) []int {
	if ps == nil {
		return []int{}
	}
	return ps
}

func renderPool(ctx context.Context, js jetstream.JetStream, consumer string, w io.Writer) error {
	v, err := readPool(ctx, js, consumer)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "MEMBER\tSTATE\tWORKER\tSTARTED\tLAST SEEN\tPARTITIONS\tHOLDS\n")
	for _, m := range v.Members {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s ago\t%s\t%s\n", m.Name, memberState(m.Member), m.Worker, m.Started.Format(time.RFC3339),
			time.Since(m.Seen).Round(100*time.Millisecond), ranges(m.Partitions), ranges(slices.Clone(m.Holds)))
	}
	if len(v.Members) == 0 {
		fmt.Fprintf(tw, "(no live member)\t\t\t\t\t\t\n")
	}
	tw.Flush()
	for _, m := range v.Members {
		if len(m.Vanished) > 0 {
			fmt.Fprintf(w, "%s still counts in %s: the entry vanished without a delete; its partitions stay with it for a grace\n",
				m.Name, strings.Join(m.Vanished, ", "))
		}
	}
	for _, p := range v.Problems {
		fmt.Fprintf(w, "warning: %s\n", p)
	}
	fmt.Fprintln(w)

	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "PARTITION\tOWNER\tPINNED TO\tUNACKED\tPENDING\n")
	for _, p := range v.Partitions {
		unacked, pending := "-", "-"
		if p.Unacked >= 0 {
			unacked, pending = fmt.Sprint(p.Unacked), fmt.Sprint(p.Pending)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", p.Partition, cmpOr(p.Owner, "-"), cmpOr(p.PinnedTo, "-"), unacked, pending)
	}
	return tw.Flush()
}

// memberState is a member's STATE in `worker pool`: leaving, live (Member.Settled) or settling.
func memberState(m events.Member) string {
	switch {
	case m.Leaving:
		return "leaving"
	case m.Settled:
		return "live"
	}
	return "settling"
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// ranges prints partitions compactly: 0-3,7,9-10.
func ranges(ps []int) string {
	sort.Ints(ps)
	var parts []string
	for i := 0; i < len(ps); {
		j := i
		for j+1 < len(ps) && ps[j+1] == ps[j]+1 {
			j++
		}
		if i == j {
			parts = append(parts, fmt.Sprint(ps[i]))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", ps[i], ps[j]))
		}
		i = j + 1
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ",")
}

// connFlags are the flags every operator command connects with (config.ClientConnection).
type connFlags struct{ cfgFile, url, creds *string }

func addConnFlags(fs *cli.FlagSet) *connFlags {
	return &connFlags{
		cfgFile: fs.String("config", "", "worker configuration `FILE`: connect with its nats section (default ./"+config.DefaultFile+" when it exists and --nats is not given)"),
		url:     fs.String("nats", "", "NATS `URL` (overrides --config); default nats://127.0.0.1:4222"),
		creds:   fs.String("creds", "", "NATS credentials `FILE`"),
	}
}

// dial connects as the flags say; the caller closes the connection.
func (f *connFlags) dial() (*nats.Conn, jetstream.JetStream, error) {
	c, err := config.ClientConnection("scimflow-worker-operator", *f.cfgFile, *f.url, *f.creds)
	if err != nil {
		return nil, nil, err
	}
	nc, err := c.Connect()
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}
