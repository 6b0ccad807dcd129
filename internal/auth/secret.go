package auth

import (
	"fmt"
	"log/slog"
)

// redacted is what a Secret prints as, whatever the verb or encoder.
const redacted = "***"

// Secret is a credential: a password, client secret or static token. Its value is only reachable
// through Reveal; fmt, encoding/json, encoding.TextMarshaler and log/slog print "***" (an empty
// Secret prints as "" so that "not set" stays visible in diagnostics).
type Secret string

// Reveal returns the secret's value, for the one place that must send it.
func (s Secret) Reveal() string { return string(s) }

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s == "" }

func (s Secret) mask() string {
	if s == "" {
		return ""
	}
	return redacted
}

// String implements fmt.Stringer.
func (s Secret) String() string { return s.mask() }

// GoString implements fmt.GoStringer.
func (s Secret) GoString() string { return fmt.Sprintf("auth.Secret(%q)", s.mask()) }

// Format implements fmt.Formatter so that no verb, %x and %d included, prints the value.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = f.Write([]byte(s.GoString()))
		return
	}
	if verb == 'q' {
		_, _ = fmt.Fprintf(f, "%q", s.mask())
		return
	}
	_, _ = f.Write([]byte(s.mask()))
}

// MarshalJSON implements json.Marshaler.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + s.mask() + `"`), nil }

// MarshalText implements encoding.TextMarshaler (YAML, zerolog, map keys).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.mask()), nil }

// UnmarshalText implements encoding.TextUnmarshaler so that decoding still reads the real value.
func (s *Secret) UnmarshalText(b []byte) error {
	*s = Secret(b)
	return nil
}

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.mask()) }
