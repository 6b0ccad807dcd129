package main

import (
	"context"
	"fmt"
	"strings"
)

// bigGroupRun is the large-group part: the overhead rounds' mixed workload with a single group,
// which every user joins, so that each membership add's answer (the whole group, as a SCIM PATCH
// answers) lists every member added so far. The worker hashes that answer for its applied record;
// the bare loop only reads it.
type bigGroupRun struct {
	members      int // the group's members at the end
	worker, bare *round
}

// bigGroup drains the large-group workload with the worker, then with the bare loop.
func (h *harness) bigGroup(ctx context.Context) (*bigGroupRun, error) {
	g := &bigGroupRun{members: h.opt.bigGroup}
	for _, kind := range []string{kindWorker, kindBare} {
		items, err := mixed("big", h.opt.bigGroup, 1)
		if err != nil {
			return nil, err
		}
		name := "biggroup-" + strings.ReplaceAll(kind, " ", "")
		r, err := h.runDrain(ctx, name, kind, items, nil, nil, false)
		if err != nil {
			return nil, err
		}
		h.logf("%-28s %6d events  %7.0f events/s  consumer %5.0f µs/event  nats-server %5.0f µs/event",
			name, r.n, r.d.rate(), r.d.consumerCPUPerEvent(), r.d.natsCPUPerEvent())
		if kind == kindWorker {
			g.worker = r
		} else {
			g.bare = r
		}
	}
	return g, nil
}

// bigGroupRows are the large-group part's rows. With the overhead rounds of the same run (whose
// workload differs only in spreading the same adds over many small groups), they also say what a
// membership add to the large group costs each consumer over an ordinary event.
func bigGroupRows(g *bigGroupRun, workers, bares []*round) []row {
	if g == nil || g.worker == nil || g.bare == nil {
		return nil
	}
	sec := fmt.Sprintf("one large group, 0 ms (%d events; %d membership adds to one group, which ends with %d members)", g.worker.n, g.members, g.members)
	wr, br := g.worker.d.rate(), g.bare.d.rate()
	wc, bc := g.worker.d.consumerCPUPerEvent(), g.bare.d.consumerCPUPerEvent()
	rows := []row{
		{sec, "events/s", fmt.Sprintf("worker %.0f, bare loop %.0f, ratio %.2f", wr, br, wr/br), "", ""},
		{sec, "consumer CPU per event", fmt.Sprintf("worker %.0f µs, bare loop %.0f µs, ratio %.2f", wc, bc, wc/bc), "", ""},
	}
	if len(workers) > 0 && len(bares) > 0 && g.members > 0 {
		cpu := func(x *round) float64 { return x.d.consumerCPUPerEvent() }
		perAdd := func(big *round, ordinary float64) float64 {
			return (big.d.consumerCPUPerEvent() - ordinary) * float64(big.n) / float64(g.members) / 1000
		}
		rows = append(rows, row{sec, "consumer CPU per membership add, above an ordinary event of the overhead rounds",
			fmt.Sprintf("worker %.2f ms, bare loop %.2f ms (the group has %d members on average)",
				perAdd(g.worker, median(workers, cpu)), perAdd(g.bare, median(bares, cpu)), g.members/2), "", ""})
	}
	return rows
}
