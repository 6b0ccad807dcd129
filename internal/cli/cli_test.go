package cli

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

func TestExitCode(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	if got := ExitCode("w", nil, &buf); got != 0 || buf.Len() != 0 {
		t.Fatalf("nil: %d %q", got, buf.String())
	}
	if got := ExitCode("w", fmt.Errorf("check: %w", ExitError(2)), &buf); got != 2 || buf.Len() != 0 {
		t.Fatalf("wrapped ExitError: %d %q", got, buf.String())
	}
	if got := ExitCode("w", errors.New("boom"), &buf); got != 1 || buf.String() != "w: boom\n" {
		t.Fatalf("plain error: %d %q", got, buf.String())
	}
}
