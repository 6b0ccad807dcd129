package cli

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

var testCmd = &Command{
	Name:        "prog sub",
	Summary:     "does a thing",
	Usage:       "prog sub --file FILE",
	Description: "Longer words about the thing.",
	Examples:    []string{"prog sub --file a.txt   # the usual"},
	Env:         []Env{{"PROG_TOKEN", "the token, when --token is not given"}},
}

func parse(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	fs := testCmd.FlagSet(&out, &errOut)
	fs.String("file", "", "the `FILE` to read")
	fs.Duration("timeout", 0, "how long to wait")
	fs.Bool("a-rather-long-flag-name", false, "a flag whose name pushes its description to the next line")
	err = fs.Parse(args)
	return out.String(), errOut.String(), err
}

func TestParseHelp(t *testing.T) {
	t.Parallel()
	for _, arg := range []string{"-h", "--help", "-help"} {
		out, errOut, err := parse(t, "--file", "x", arg)
		var e ExitError
		if !errors.As(err, &e) || e != 0 {
			t.Fatalf("%s: want ExitError(0), got %v", arg, err)
		}
		if errOut != "" {
			t.Errorf("%s: help goes to stdout, stderr got %q", arg, errOut)
		}
		for _, want := range []string{
			"prog sub: does a thing\n", "usage: prog sub --file FILE\n", "Longer words about the thing.",
			"\nflags:\n", "  --file FILE             the FILE to read\n", "  --timeout DURATION      how long to wait\n",
			"  --a-rather-long-flag-name\n                          a flag whose name",
			"\nenvironment:\n  PROG_TOKEN  the token, when --token is not given\n",
			"\nexamples:\n  prog sub --file a.txt   # the usual\n",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: help lacks %q:\n%s", arg, want, out)
			}
		}
		if ExitCode("prog", err, &bytes.Buffer{}) != 0 {
			t.Errorf("%s: the process status after help is not 0", arg)
		}
	}
}

func TestParseBadFlag(t *testing.T) {
	t.Parallel()
	out, errOut, err := parse(t, "--nope")
	var printed bytes.Buffer
	if ExitCode("prog", err, &printed) != 2 || printed.Len() != 0 {
		t.Fatalf("want status 2 and nothing more printed, got %v, %q", err, printed.String())
	}
	if !strings.Contains(err.Error(), "flag provided but not defined: -nope") {
		t.Errorf("the error says what was wrong: %v", err)
	}
	if out != "" {
		t.Errorf("stdout: %q", out)
	}
	for _, want := range []string{"flag provided but not defined: -nope", "usage: prog sub --file FILE", "Run 'prog sub -h' for help."} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q: %q", want, errOut)
		}
	}
}

func TestDispatchUsageAndLookup(t *testing.T) {
	t.Parallel()
	d := &Dispatch{Prog: "prog", Summary: "a program", Commands: []*Command{testCmd, {Name: "prog other thing", Summary: "another"}}}
	var b bytes.Buffer
	d.WriteUsage(&b)
	for _, want := range []string{"usage: prog <command> [flags]", "  sub          does a thing\n", "  other thing  another\n", "prog help <command>"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("usage lacks %q:\n%s", want, b.String())
		}
	}
	if c, ok := d.Lookup([]string{"other", "thing"}); !ok || c.Summary != "another" {
		t.Errorf("Lookup(other thing) = %v, %v", c, ok)
	}
	if c, ok := d.Lookup([]string{"other"}); !ok || c.Summary != "another" {
		t.Errorf("Lookup(other), the only command under other, = %v, %v", c, ok)
	}
	if _, ok := d.Lookup([]string{"oth"}); ok {
		t.Error("Lookup(oth) found a command")
	}
}

func TestFlagLinesWrapAndShortFlags(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	fs := testCmd.FlagSet(&out, &bytes.Buffer{})
	fs.Bool("v", false, "verbose")
	fs.String("since", "", strings.Repeat("word ", 30)+"end")
	if err := fs.Parse([]string{"-h"}); err != ExitError(0) {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "\n  -v                      verbose\n") {
		t.Errorf("a one-letter flag has one dash:\n%s", out.String())
	}
	for _, line := range strings.Split(out.String(), "\n") {
		if len(line) > helpWidth {
			t.Errorf("line longer than %d: %q", helpWidth, line)
		}
	}
	if !strings.Contains(out.String(), "\n"+strings.Repeat(" ", flagColumn)+"word") {
		t.Errorf("a long description continues under the first line's:\n%s", out.String())
	}
}
