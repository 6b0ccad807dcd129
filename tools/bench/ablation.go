package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/scimflow/scimflow/internal/ablate"
	"github.com/scimflow/scimflow/internal/rig"
)

// ablationWorker is the worker built with the tag that lets SCIMFLOW_BENCH_ABLATE switch its
// durable records off (internal/ablate); an ordinary build has no such switch.
var ablationWorker = rig.Binary{Name: "worker-ablate", Pkg: "./cmd/worker", Tags: "scimflow_ablate"}

// variant is one consumer of the ablation part: the ordinary worker, the worker without some of
// its records, or the bare loop.
type variant struct {
	label string
	off   []string // what SCIMFLOW_BENCH_ABLATE names; nil: the ordinary build
	bare  bool
}

// ablationVariants are measured in this order in every round.
var ablationVariants = []variant{
	{label: "worker"},
	{label: "worker without the provisioning log", off: []string{"history"}},
	{label: "worker without the applied record", off: []string{"applied"}},
	// The record built as now, but no write of its own: what the worker would cost if its one
	// durable write per event were an outcome that carried the record (the outcome's own bytes
	// would grow by the record's; this variant does not add them).
	{label: "worker with its applied record built, not written", off: []string{"appliedwrite"}},
	{label: "worker without either", off: []string{"applied", "history"}},
	{label: kindBare, bare: true},
}

// ablationResult is a variant's rounds.
type ablationResult struct {
	v      variant
	rounds []*round
}

// ablation drains the mixed workload with each variant in turn, opt.pairs rounds: what the
// applied record and the provisioning log cost the worker against the bare loop, in one run.
// Each record the worker leaves out is one NATS message less per event; a variant that does not
// show it was not built or run as asked, and the part fails rather than report it.
func (h *harness) ablation(ctx context.Context) ([]*ablationResult, error) {
	res := make([]*ablationResult, len(ablationVariants))
	for i, v := range ablationVariants {
		res[i] = &ablationResult{v: v}
	}
	for i := range h.opt.pairs {
		for _, a := range res {
			items, err := mixed(fmt.Sprintf("abl%d", i), h.opt.users, h.opt.groups)
			if err != nil {
				return nil, err
			}
			kind := kindWorker
			if a.v.bare {
				kind = kindBare
			}
			name := fmt.Sprintf("ablation-%d-%s", i+1, strings.ReplaceAll(a.v.label, " ", "-"))
			r, err := h.runDrain(ctx, name, kind, items, nil, func(e *env) error {
				if a.v.off != nil {
					e.workerBin = filepath.Join(h.bin, ablationWorker.Name)
					e.workerEnv = []string{ablate.Env + "=" + strings.Join(a.v.off, ",")}
				}
				return nil
			}, false)
			if err != nil {
				return nil, err
			}
			h.logf("%-28s %6d events  %7.0f events/s  consumer %5.0f µs/event  nats-server %5.0f µs/event  %4.2f NATS msgs in/event",
				name, r.n, r.d.rate(), r.d.consumerCPUPerEvent(), r.d.natsCPUPerEvent(), r.d.inMsgsPerEvent())
			a.rounds = append(a.rounds, r)
		}
	}
	return res, checkAblation(res)
}

// checkAblation fails when a variant without some records did not send fewer messages: at least
// 0.9 per event for each record left out, against the ordinary worker.
func checkAblation(res []*ablationResult) error {
	msgs := func(r *round) float64 { return r.d.inMsgsPerEvent() }
	full := median(res[0].rounds, msgs)
	for _, a := range res[1:] {
		if a.v.bare {
			continue
		}
		got := median(a.rounds, msgs)
		if want := 0.9 * float64(len(a.v.off)); full-got < want {
			return fmt.Errorf("ablation: %q sent %.2f NATS messages per event against the worker's %.2f, not the %d fewer per event that leaving out %s takes: the ablation build did not switch it off",
				a.v.label, got, full, len(a.v.off), strings.Join(a.v.off, " and "))
		}
	}
	return nil
}

// ablationRows are the part's lines of the table: per variant, its rate and CPU against the bare
// loop's, in the same run.
func ablationRows(res []*ablationResult) []row {
	if len(res) == 0 {
		return nil
	}
	bare := res[len(res)-1]
	rate := func(x *round) float64 { return x.d.rate() }
	cpu := func(x *round) float64 { return x.d.consumerCPUPerEvent() }
	br, bc := median(bare.rounds, rate), median(bare.rounds, cpu)
	sec := fmt.Sprintf("ablation, 0 ms (%d events, median of %d rounds each): what the worker's records cost", bare.rounds[0].n, len(bare.rounds))
	var rows []row
	for _, a := range res {
		wr, wc := median(a.rounds, rate), median(a.rounds, cpu)
		fig := fmt.Sprintf("%.0f events/s, %.2f × the bare loop; consumer CPU %.0f µs/event, %.2f × the bare loop's; nats-server %.0f µs/event; %.2f NATS msgs in/event",
			wr, wr/br, wc, wc/bc, median(a.rounds, func(x *round) float64 { return x.d.natsCPUPerEvent() }), median(a.rounds, func(x *round) float64 { return x.d.inMsgsPerEvent() }))
		rows = append(rows, row{section: sec, measure: a.v.label, figure: fig})
	}
	return rows
}
