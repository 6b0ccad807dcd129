//go:build !scimflow_ablate

package ablate

// Applied is false in every build but the benchmark's ablation build.
const Applied = false

// AppliedWrite is false in every build but the benchmark's ablation build.
const AppliedWrite = false

// History is false in every build but the benchmark's ablation build.
const History = false
