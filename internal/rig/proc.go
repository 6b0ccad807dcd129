package rig

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Proc is a child process of a harness, its output appended to a log file.
type Proc struct {
	Name    string
	Log     string // the log file
	Started time.Time

	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Start starts bin with args, env added to the harness's environment. Its standard output and
// error are appended to logPath between a start and an exit line; stdout, when not nil, gets its
// standard output too. The child is put in its own process group (a Ctrl-C at the terminal reaches
// only the harness, which stops its children in order) and, on Linux, the kernel kills it if the
// harness dies.
func Start(name, bin string, args, env []string, logPath string, stdout io.Writer) (*Proc, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	fmt.Fprintf(f, "=== %s start %s %s\n", time.Now().UTC().Format(time.RFC3339Nano), bin, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if stdout != nil {
		cmd.Stdout = io.MultiWriter(f, stdout)
	}
	cmd.Env = append(os.Environ(), env...)
	setChildAttrs(cmd)
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s (%s): %w", name, bin, err)
	}
	p := &Proc{Name: name, Log: logPath, Started: time.Now(), cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		fmt.Fprintf(f, "=== %s exit %v\n", time.Now().UTC().Format(time.RFC3339Nano), p.err)
		f.Close()
		close(p.done)
	}()
	return p, nil
}

// PID is the process id.
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Done is closed once the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Err is the process's exit status once Done is closed.
func (p *Proc) Err() error { return p.err }

// ExitErr says how the process ended, nil while it runs (or for no process): the exited func of
// WaitHTTP.
func (p *Proc) ExitErr() error {
	if p == nil || !p.Exited() {
		return nil
	}
	return fmt.Errorf("%s exited (%v); its log: %s", p.Name, p.err, p.Log)
}

// Signal sends sig to the process.
func (p *Proc) Signal(sig os.Signal) { _ = p.cmd.Process.Signal(sig) }

// Kill kills the process with SIGKILL and waits for it.
func (p *Proc) Kill() {
	p.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop sends SIGTERM and waits up to grace, then kills it; it reports whether the process exited
// in time. A process that is gone already (or none) is left alone.
func (p *Proc) Stop(grace time.Duration) bool {
	if p == nil || p.Exited() {
		return true
	}
	p.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return true
	case <-time.After(grace):
		p.Kill()
		return false
	}
}
