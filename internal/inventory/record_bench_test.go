//go:build scimflow_ablate

package inventory

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/scimflow/scimflow/internal/ablate"
	"github.com/scimflow/scimflow/internal/pipeline"
	"github.com/scimflow/scimflow/internal/reconcile"
)

// BenchmarkRecordApplied is the worker's part of an applied record without its write: the
// answer's hash, the merge into the remembered record and the encoding, for a user's update and
// a membership add to a group of 25 (the overhead rounds' workload, docs/benchmarks.md). The
// write needs a JetStream server and is measured by make bench's ablation part; this build leaves
// it out:
//
//	SCIMFLOW_BENCH_ABLATE=appliedwrite go test -tags scimflow_ablate -run '^$' -bench RecordApplied -benchmem ./internal/inventory
func BenchmarkRecordApplied(b *testing.B) {
	if !ablate.AppliedWrite {
		b.Fatalf("run with %s=appliedwrite: without it the benchmark would write to a bucket it does not have", ablate.Env)
	}
	m := exampleModel(b)
	l := &AppliedLog{shapes: map[string]*shape{}, log: zerolog.Nop(), now: time.Now, memo: map[string]memoRecord{}}
	for _, o := range []string{"User", "Group"} {
		shs, err := shapesOf(m, []string{o})
		if err != nil {
			b.Fatal(err)
		}
		l.shapes[o] = shs[0]
	}
	user, group := []byte(userAnswer), []byte(groupAnswer(25))
	cases := []struct {
		name, object, keyName string
		answer                []byte
		attrs                 map[string]any
	}{
		{"User", "User", "userName", user, map[string]any{"displayName": "Ada Lovelace", "title": "CTO"}},
		{"Group/25", "Group", "displayName", group, map[string]any{"members": []any{"u-00000024"}}},
	}
	ctx := context.Background()
	const keys = 1000
	for _, c := range cases {
		ks := make([]map[string]any, keys)
		for i := range ks {
			ks[i] = map[string]any{c.keyName: fmt.Sprintf("%s-%d", c.object, i)}
		}
		key := func(i int) map[string]any { return ks[i%keys] }
		for i := range keys { // created first, as in the workload: every later write builds on a remembered record
			l.RecordApplied(ctx, pipeline.Applied{Object: c.object, Key: key(i), EventID: "create", StreamSeq: uint64(i + 1),
				Operation: string(reconcile.OpCreate), TargetID: "id", Resource: c.answer, Attributes: c.attrs})
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				l.RecordApplied(ctx, pipeline.Applied{Object: c.object, Key: key(i), EventID: "update", StreamSeq: uint64(keys + i),
					Operation: string(reconcile.OpUpdate), TargetID: "id", Resource: c.answer, Attributes: c.attrs})
			}
		})
	}
}
