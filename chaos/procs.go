package main

import (
	"sync"
	"time"

	"github.com/scimflow/scimflow/internal/rig"
)

// proc is one child process of the suite (rig.Proc: in its own process group, killed with the
// suite), and whether the suite stopped it on purpose.
type proc struct {
	*rig.Proc
	// expected is set before the suite stops it on purpose (kill -9, SIGTERM).
	mu       sync.Mutex
	expected bool
}

// startProc starts bin with args, appending stdout and stderr to logPath.
func startProc(name, bin string, args []string, env []string, logPath string) (*proc, error) {
	p, err := rig.Start(name, bin, args, env, logPath, nil)
	if err != nil {
		return nil, err
	}
	return &proc{Proc: p}, nil
}

func (p *proc) markExpected() {
	p.mu.Lock()
	p.expected = true
	p.mu.Unlock()
}

func (p *proc) wasExpected() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.expected
}

// kill9 kills the process with SIGKILL and waits for it.
func (p *proc) kill9() {
	p.markExpected()
	p.Kill()
}

// term sends SIGTERM and waits up to grace, then kills it; it reports whether it exited in time.
func (p *proc) term(grace time.Duration) bool {
	p.markExpected()
	return p.Stop(grace)
}

// exitErr says how the process ended, nil while it runs (or for no process).
func (p *proc) exitErr() error {
	if p == nil {
		return nil
	}
	return p.ExitErr()
}
