package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// Command describes a command for its help text: what it does, how to call it, examples and the
// environment it reads. The flags come from the command's flag set.
type Command struct {
	// Name is the command as typed: "worker run", "publisher publish", "cyberark-sim".
	Name string
	// Summary is one line: what the command does.
	Summary string
	// Usage is the synopsis without the leading "usage: ".
	Usage string
	// Description is one or more paragraphs, printed as written.
	Description string
	// Examples are command lines; a "# comment" may follow on the same line.
	Examples []string
	// Env lists the environment variables the command reads.
	Env []Env
}

// Env is an environment variable a command reads, and what for.
type Env struct {
	Name, Meaning string
}

// FlagSet is a flag.FlagSet whose Parse answers -h and --help with the command's help.
type FlagSet struct {
	*flag.FlagSet
	cmd    *Command
	stdout io.Writer
	stderr io.Writer
}

// FlagSet returns an empty flag set for the command. Parse errors go to stderr, help to stdout.
func (c *Command) FlagSet(stdout, stderr io.Writer) *FlagSet {
	fs := flag.NewFlagSet(c.Name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {} // Parse prints help or a hint itself, to the right stream
	return &FlagSet{FlagSet: fs, cmd: c, stdout: stdout, stderr: stderr}
}

// Parse parses args. On -h, -help or --help it prints the help to stdout and returns ExitError(0);
// on a bad flag it prints the problem and a hint to stderr and returns a UsageError (status 2).
// Both end the command with that status and no further message.
func (fs *FlagSet) Parse(args []string) error {
	err := fs.FlagSet.Parse(args)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, flag.ErrHelp):
		fs.cmd.WriteHelp(fs.stdout, fs.FlagSet)
		return ExitError(0)
	default:
		// The flag package already printed err.
		fmt.Fprintf(fs.stderr, "usage: %s\nRun '%s -h' for help.\n", fs.cmd.Usage, fs.cmd.Name)
		return UsageError{err}
	}
}

// UsageError is a bad command line, already reported with a hint: ExitCode makes it status 2 and
// prints nothing more; its text is the problem, for callers and tests that look.
type UsageError struct{ Err error }

func (e UsageError) Error() string { return e.Err.Error() }

// Unwrap gives the problem and ExitError(2).
func (e UsageError) Unwrap() []error { return []error{ExitError(2), e.Err} }

// Fail reports a usage problem found after parsing (a missing required flag, say) the way Parse
// reports a bad flag.
func (fs *FlagSet) Fail(format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	fmt.Fprintf(fs.stderr, "%s: %v\n", fs.cmd.Name, err)
	fmt.Fprintf(fs.stderr, "usage: %s\nRun '%s -h' for help.\n", fs.cmd.Usage, fs.cmd.Name)
	return UsageError{err}
}

// WriteHelp writes the command's help: summary, usage, description, flags (those of fs, which may
// be nil), environment and examples.
func (c *Command) WriteHelp(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "%s: %s\n\nusage: %s\n", c.Name, c.Summary, c.Usage)
	if d := strings.TrimSpace(c.Description); d != "" {
		fmt.Fprintf(w, "\n%s\n", d)
	}
	if fs != nil {
		var b strings.Builder
		fs.VisitAll(func(f *flag.Flag) { writeFlag(&b, f) })
		if b.Len() > 0 {
			fmt.Fprintf(w, "\nflags:\n%s", b.String())
		}
	}
	if len(c.Env) > 0 {
		fmt.Fprintln(w, "\nenvironment:")
		width := 0
		for _, e := range c.Env {
			width = max(width, len(e.Name))
		}
		for _, e := range c.Env {
			fmt.Fprintf(w, "  %-*s  %s\n", width, e.Name, e.Meaning)
		}
	}
	if len(c.Examples) > 0 {
		fmt.Fprintln(w, "\nexamples:")
		for _, e := range c.Examples {
			fmt.Fprintf(w, "  %s\n", e)
		}
	}
}

// flagColumn is where a flag's description starts when its name is short enough; descriptions
// wrap before helpWidth.
const (
	flagColumn = 26
	helpWidth  = 100
)

// writeFlag writes one flag as "  --name VALUE   description (default x)"; a one-letter flag
// gets one dash (-v).
func writeFlag(b *strings.Builder, f *flag.Flag) {
	name, usage := flag.UnquoteUsage(f)
	dashes := "--"
	if len(f.Name) == 1 {
		dashes = "-"
	}
	head := "  " + dashes + f.Name
	if name != "" {
		head += " " + strings.ToUpper(name)
	}
	if def := f.DefValue; def != "" && def != "0" && def != "false" && def != "0s" {
		usage += fmt.Sprintf(" (default %s)", def)
	}
	indent := strings.Repeat(" ", flagColumn)
	if len(head) < flagColumn-1 {
		b.WriteString(head + strings.Repeat(" ", flagColumn-len(head)))
	} else {
		b.WriteString(head + "\n" + indent)
	}
	col := flagColumn
	for i, word := range strings.Fields(usage) {
		if i > 0 {
			if col+1+len(word) > helpWidth {
				b.WriteString("\n" + indent)
				col = flagColumn
			} else {
				b.WriteByte(' ')
				col++
			}
		}
		b.WriteString(word)
		col += len(word)
	}
	b.WriteByte('\n')
}

// Dispatch is a program's table of subcommands, for its usage text and "help <command>".
type Dispatch struct {
	// Prog is the program's name.
	Prog string
	// Summary says what the program is, in one line.
	Summary string
	// Commands, in the order the usage lists them.
	Commands []*Command
}

// WriteUsage writes the program's usage: its commands with their summaries.
func (d *Dispatch) WriteUsage(w io.Writer) {
	fmt.Fprintf(w, "%s: %s\n\nusage: %s <command> [flags]\n\ncommands:\n", d.Prog, d.Summary, d.Prog)
	width := 0
	for _, c := range d.Commands {
		width = max(width, len(d.sub(c)))
	}
	for _, c := range d.Commands {
		fmt.Fprintf(w, "  %-*s  %s\n", width, d.sub(c), c.Summary)
	}
	fmt.Fprintf(w, "\nRun '%s help <command>' or '%s <command> -h' for a command's flags, environment and examples.\n", d.Prog, d.Prog)
}

// sub is a command's name after the program's.
func (d *Dispatch) sub(c *Command) string { return strings.TrimPrefix(c.Name, d.Prog+" ") }

// Lookup finds the command named by the words after the program name ("run", "model import"),
// or by its first words when they name only one command ("model").
func (d *Dispatch) Lookup(words []string) (*Command, bool) {
	name := strings.Join(words, " ")
	var prefixed []*Command
	for _, c := range d.Commands {
		if d.sub(c) == name {
			return c, true
		}
		if strings.HasPrefix(d.sub(c), name+" ") {
			prefixed = append(prefixed, c)
		}
	}
	if len(prefixed) == 1 {
		return prefixed[0], true
	}
	return nil, false
}
