// Package cli holds what scimflow's commands share about ending: exit statuses that carry no
// message of their own, and the mapping of an error to a status.
package cli

import (
	"errors"
	"fmt"
	"io"
)

// ExitError ends a command with a status after its output already said why (a usage error is 2, a
// check or a wait that did not pass is 1).
type ExitError int

func (e ExitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// ExitCode is the process status for err: 0 for nil, the status of an ExitError, otherwise 1 after
// printing "prog: err" to stderr.
func ExitCode(prog string, err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	var e ExitError
	if errors.As(err, &e) {
		return int(e)
	}
	fmt.Fprintln(stderr, prog+":", err)
	return 1
}
