package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/scimflow/scimflow/internal/ablate"
)

// microPackages and microPattern are the Go micro-benchmarks of issue 10: event decoding,
// planning and filter building, with allocations; the applied log's reading of a write's answer
// (a user, a group of 50 members), its largest share of the worker's CPU; and the key scheduler's
// turn on a deep backlog and on a full set of acknowledged sequences, the costs that grow with
// the backlog and with the worker's age, which a short drain does not reach. micro adds the
// applied record's build without its write (BenchmarkRecordApplied, ablation build).
var (
	microPackages = []string{"./internal/events", "./internal/reconcile", "./internal/provision", "./internal/inventory"}
	microPattern  = "Decode$|Plan$|Filter$|HashAnswer$|KeySchedulerBacklog$|RecentSeqsFull$"
)

// microResult is one benchmark line of `go test -bench -benchmem`.
type microResult struct {
	pkg, name string
	nsPerOp   float64
	bPerOp    float64
	allocs    float64
	extra     []string // other metrics, "value unit"
}

func (h *harness) micro(ctx context.Context) ([]microResult, error) {
	rs, err := h.goBench(ctx, nil, append([]string{"-bench", microPattern}, microPackages...)...)
	if err != nil {
		return nil, err
	}
	// The applied record's build without its write exists only in the ablation build, told to
	// leave the write out (internal/inventory's BenchmarkRecordApplied).
	ablated, err := h.goBench(ctx, []string{ablate.Env + "=appliedwrite"}, "-tags", ablationWorker.Tags, "-bench", "RecordApplied$", "./internal/inventory")
	if err != nil {
		return nil, err
	}
	return append(rs, ablated...), nil
}

// goBench runs `go test -run ^$ -benchmem -count 1 args...` in the repository, with env added to
// the environment, and returns its benchmark lines; none is an error.
func (h *harness) goBench(ctx context.Context, env []string, args ...string) ([]microResult, error) {
	args = append([]string{"test", "-run", "^$", "-benchmem", "-count", "1"}, args...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = h.repo
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	rs := parseBench(string(out))
	if len(rs) == 0 {
		return nil, fmt.Errorf("go %s printed no benchmark line:\n%s", strings.Join(args, " "), out)
	}
	return rs, nil
}

// parseBench reads the result lines of `go test -bench -benchmem` output.
func parseBench(out string) []microResult {
	var rs []microResult
	pkg := ""
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimSpace(p)
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue // not a result line (a log line that starts with a benchmark's name)
		}
		r := microResult{pkg: pkg, name: f[0]}
		if i := strings.LastIndexByte(r.name, '-'); i > 0 {
			if _, err := strconv.Atoi(r.name[i+1:]); err == nil {
				r.name = r.name[:i] // the GOMAXPROCS suffix
			}
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				break
			}
			switch f[i+1] {
			case "ns/op":
				r.nsPerOp = v
			case "B/op":
				r.bPerOp = v
			case "allocs/op":
				r.allocs = v
			default:
				r.extra = append(r.extra, f[i]+" "+f[i+1])
			}
		}
		rs = append(rs, r)
	}
	return rs
}
