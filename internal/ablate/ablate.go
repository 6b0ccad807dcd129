// Package ablate switches features off for one measurement: `make bench`'s ablation part builds
// the worker with the build tag scimflow_ablate and names, in SCIMFLOW_BENCH_ABLATE, what that
// worker leaves out, so that the benchmark can say what each feature costs against the bare loop.
// An ordinary build has no such switch: Applied, AppliedWrite and History are constants false
// there, and the code they guard is compiled out.
package ablate

import "strings"

// Env names the features an ablation build leaves out, comma-separated: applied (the applied
// record, IDM_APPLIED), appliedwrite (the applied record's write only: the record is still built
// and encoded, as it would be if the outcome carried it) and history (the provisioning log's
// outcome entries, IDM_HISTORY).
const Env = "SCIMFLOW_BENCH_ABLATE"

// Features are the names Env takes.
var Features = []string{"applied", "appliedwrite", "history"}

// names reports which of Features the comma-separated list s names.
func names(s string) map[string]bool {
	out := map[string]bool{}
	for _, f := range strings.Split(s, ",") {
		out[strings.TrimSpace(f)] = true
	}
	return out
}
