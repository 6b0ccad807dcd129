package main

import (
	"io"
	"os"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/term"

	"github.com/scimflow/scimflow/internal/config"
)

// reportLogger is the logger of the commands whose output is a report for people (check, plan):
// readable lines, never JSON, and only warnings and errors (or the configured level, if higher),
// so that what is logged does not drown the report.
func reportLogger(c config.Log, w io.Writer) zerolog.Logger {
	level, err := zerolog.ParseLevel(c.Level)
	if err != nil || level < zerolog.WarnLevel {
		level = zerolog.WarnLevel
	}
	color := false
	if f, ok := w.(*os.File); ok {
		color = term.IsTerminal(int(f.Fd()))
	}
	out := zerolog.ConsoleWriter{Out: w, NoColor: !color, TimeFormat: time.TimeOnly}
	return zerolog.New(out).Level(level).With().Timestamp().Logger()
}
