//go:build scimflow_ablate

package ablate

import "os"

var off = names(os.Getenv(Env))

// Applied: the worker records no applied record. Built only with the tag scimflow_ablate.
var Applied = off["applied"]

// AppliedWrite: the worker builds and encodes its applied records but does not write them. Built
// only with the tag scimflow_ablate.
var AppliedWrite = off["appliedwrite"]

// History: the worker writes no outcome to the provisioning log. Built only with the tag
// scimflow_ablate.
var History = off["history"]
