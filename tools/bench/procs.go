package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/scimflow/scimflow/internal/rig"
)

// proc is a child process of the harness.
type proc = rig.Proc

// startProc starts bin with args, its output appended to logPath; stdout, when not nil, gets its
// standard output too.
func startProc(name, bin string, args []string, logPath string, stdout io.Writer) (*proc, error) {
	return rig.Start(name, bin, args, nil, logPath, stdout)
}

// cpuTime is the CPU (user + system) pid has used (rig.CPUTime).
func cpuTime(pid int) (time.Duration, error) { return rig.CPUTime(pid) }

// peakRSS is VmHWM of pid in bytes, from /proc/<pid>/status.
func peakRSS(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("peak RSS of pid %d: %w", pid, err)
	}
	return parseHWM(string(b))
}

func parseHWM(status string) (int64, error) {
	for _, line := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(v)
			if len(f) != 2 || f[1] != "kB" {
				return 0, fmt.Errorf("/proc status: VmHWM line %q is not <n> kB", line)
			}
			n, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc status: VmHWM line %q: %w", line, err)
			}
			return n * 1024, nil
		}
	}
	return 0, errors.New("/proc status has no VmHWM line")
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
