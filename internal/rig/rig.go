// Package rig holds what the repository's process harnesses share (make chaos, make bench,
// make bench-inventory): building the binaries they run, finding free ports, waiting for a process
// to answer over HTTP, and finding the repository they run from.
package rig

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// FreePort asks the kernel for a free TCP port on 127.0.0.1.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// WaitHTTP polls url until it answers 200, within passes, or exited (nil: not asked) reports the
// process that should answer gone: a non-nil error from it says how, and ends the wait.
func WaitHTTP(ctx context.Context, url string, exited func() error, within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if exited != nil {
			if err := exited(); err != nil {
				return fmt.Errorf("waiting for %s: %w", url, err)
			}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s did not answer 200 within %s", url, within)
}

// Binary is a program a harness builds: its file name, its package and the build tags it is
// built with (comma-separated; none when empty).
type Binary struct{ Name, Pkg, Tags string }

// The programs every harness runs.
var (
	NATSServer = Binary{Name: "nats-server", Pkg: "./tools/nats-server"}
	Worker     = Binary{Name: "worker", Pkg: "./cmd/worker"}
	Simulator  = Binary{Name: "cyberark-sim", Pkg: "./cmd/cyberark-sim"}
)

// Build compiles bins from repo into dir, statically (CGO_ENABLED=0); out (nil: nowhere) gets a
// line per binary with the time it took.
func Build(ctx context.Context, repo, dir string, out io.Writer, bins ...Binary) error {
	for _, b := range bins {
		start := time.Now()
		args := []string{"build", "-o", filepath.Join(dir, b.Name)}
		if b.Tags != "" {
			args = append(args, "-tags", b.Tags)
		}
		cmd := exec.CommandContext(ctx, "go", append(args, b.Pkg)...)
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if msg, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %w\n%s", b.Pkg, err, msg)
		}
		if out != nil {
			fmt.Fprintf(out, "built %-12s in %s\n", b.Name, time.Since(start).Round(100*time.Millisecond))
		}
	}
	return nil
}

// FindRepo walks up from the working directory to the folder holding go.mod; how says how to run
// the harness from the repository, for the error when there is none.
func FindRepo(how string) (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory: " + how)
		}
		dir = parent
	}
}

// Workspace finds the repository a harness builds from (FindRepo; how is the error's advice) and
// makes it a work folder in the system's temporary directory, named from prefix. The caller
// removes the folder.
func Workspace(how, prefix string) (repo, dir string, err error) {
	if repo, err = FindRepo(how); err != nil {
		return "", "", err
	}
	if dir, err = os.MkdirTemp("", prefix); err != nil {
		return "", "", err
	}
	return repo, dir, nil
}
