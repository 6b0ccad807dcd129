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

// clockTick is USER_HZ, the unit of utime and stime in /proc/<pid>/stat: 100 on every Linux
// architecture Go supports.
const clockTick = 10 * time.Millisecond

// cpuTime is the CPU (user + system) pid has used, from /proc/<pid>/stat.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("cpu time of pid %d: %w", pid, err)
	}
	return parseStat(string(b))
}

// parseStat reads utime + stime from a /proc/<pid>/stat line. The command name (field 2) may hold
// spaces and parentheses, so fields are counted from the last ')'.
func parseStat(s string) (time.Duration, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc stat line %q: no command name", clip(s, 80))
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc stat line %q: %d fields after the command name, want at least 13", clip(s, 80), len(f))
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc stat line %q: utime/stime: %w", clip(s, 80), err)
	}
	return time.Duration(ut+st) * clockTick, nil
}

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
