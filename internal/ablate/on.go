//go:build scimflow_ablate

package ablate

import "os"

var off = names(os.Getenv(Env))

// Applied: the worker records no applied record. Built only with the tag scimflow_ablate.
var Applied = off["applied"]

// History: the worker writes no outcome to the provisioning log. Built only with the tag
// scimflow_ablate.
var History = off["history"]
