// Package cli holds what scimflow's commands share about ending: exit statuses that carry no
// message of their own, and the mapping of an error to a status.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"
)

// ProfileEnv names the environment variable that, when set to a folder, makes a command write a CPU
// profile of its whole run there as <prog>-<pid>.pprof, what it allocated as
// <prog>-<pid>.allocs.pprof, and where its goroutines waited as <prog>-<pid>.block.pprof (channels,
// conditions and locks, every wait of 200µs or more) and <prog>-<pid>.mutex.pprof (go tool pprof
// reads them all). The profiles are complete once the command ends, SIGTERM included; a killed
// process leaves none.
const ProfileEnv = "SCIMFLOW_CPUPROFILE"

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

// Run is the signature of a command's testable entry point: the arguments after the program name,
// and where to write.
type Run func(ctx context.Context, args []string, stdout, stderr io.Writer) error

// Main runs a command as a process: a context cancelled by SIGINT or SIGTERM, the program's
// arguments and standard streams, and the exit status ExitCode gives. It does not return.
func Main(prog string, run Run) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	stopProfile := StartProfile(prog)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	stopProfile()
	os.Exit(ExitCode(prog, err, os.Stderr))
}

// StartProfile starts the CPU profile ProfileEnv asks for (nothing when it is unset) and returns
// what completes it. A profile that can't be started ends the process with status 2.
func StartProfile(prog string) (stop func()) {
	dir := os.Getenv(ProfileEnv)
	if dir == "" {
		return func() {}
	}
	path := filepath.Join(dir, fmt.Sprintf("%s-%d.pprof", prog, os.Getpid()))
	f, err := os.Create(path)
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %s: %v\n", prog, ProfileEnv, err)
		os.Exit(2)
	}
	// Where goroutines waited: every wait of 200µs or more, shorter ones sampled; one contended
	// lock in five.
	runtime.SetBlockProfileRate(int(200 * time.Microsecond))
	runtime.SetMutexProfileFraction(5)
	return func() {
		pprof.StopCPUProfile()
		f.Close()
		// Beside it, what the run allocated (go tool pprof -sample_index=alloc_space) and where it
		// waited.
		for _, name := range []string{"allocs", "block", "mutex"} {
			if a, err := os.Create(filepath.Join(dir, fmt.Sprintf("%s-%d.%s.pprof", prog, os.Getpid(), name))); err == nil {
				_ = pprof.Lookup(name).WriteTo(a, 0)
				a.Close()
			}
		}
	}
}
