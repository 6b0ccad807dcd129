package main

import (
	"bufio"
	"encoding/json"
	"os"
	"regexp"
	"strings"
)

// LogFigures is what the workers' logs say, for the figures. The logs are evidence of what
// happened, not of correctness: no assertion depends on them except a crash (a panic or a Go
// fatal error), which is a violation.
type LogFigures struct {
	// OwnershipMoves counts log lines whose message matches the ownership pattern (a replica
	// taking, releasing or losing partitions); -1 when no line matched, i.e. the workers do not
	// log it.
	OwnershipMoves int
	// Recovered sums the "recovered" field: events delivered earlier (to a worker that died or
	// stopped) that came back before newer ones ran.
	Recovered int
	// RedeliveredLines counts lines with "redelivered": true.
	RedeliveredLines int
	// DrainDeadlines counts shutdowns whose drain deadline passed.
	DrainDeadlines int
	// Errors counts lines at level error.
	Errors int
	// Crashes are the first lines of panics and fatal errors.
	Crashes []string
}

// ownershipPattern matches the messages of a replica that takes, releases or loses partitions.
const ownershipPattern = `(?i)((acquir|claim|assign|took|taking|take|releas|handed|handing|hand over|lost|revok|rebalanc)\w*.*partition|partition.*\b(acquir|claim|assign|releas|handed|handing|hand over|lost|owner|rebalanc)\w*)`

func scanLogs(paths []string, pattern string) LogFigures {
	re := regexp.MustCompile(pattern)
	f := LogFigures{OwnershipMoves: -1}
	for _, p := range paths {
		file, err := os.Open(p)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(file)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "panic:") || strings.HasPrefix(line, "fatal error:") {
				f.Crashes = append(f.Crashes, p+": "+line)
				continue
			}
			if !strings.HasPrefix(line, "{") {
				continue
			}
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) != nil {
				continue
			}
			msg, _ := m["message"].(string)
			if re.MatchString(msg) {
				if f.OwnershipMoves < 0 {
					f.OwnershipMoves = 0
				}
				f.OwnershipMoves++
			}
			if n, ok := m["recovered"].(float64); ok {
				f.Recovered += int(n)
			}
			if b, _ := m["redelivered"].(bool); b {
				f.RedeliveredLines++
			}
			if strings.HasPrefix(msg, "drain deadline passed") {
				f.DrainDeadlines++
			}
			if m["level"] == "error" {
				f.Errors++
			}
		}
		file.Close()
	}
	return f
}
