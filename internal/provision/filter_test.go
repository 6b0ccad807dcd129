package provision

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFilter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		match []Match
		want  string
	}{
		{[]Match{{"userName", "jdoe@example.com"}}, `userName eq "jdoe@example.com"`},
		{[]Match{{"userName", "jdoe"}, {"externalId", "42"}}, `userName eq "jdoe" and externalId eq "42"`},
		{[]Match{{"displayName", `O"Brien \ Co`}}, `displayName eq "O\"Brien \\ Co"`},
		{[]Match{{"userName", `x" or userName pr or "`}}, `userName eq "x\" or userName pr or \""`},
		{[]Match{{"name.familyName", "Łódź ü 東京"}}, `name.familyName eq "Łódź ü 東京"`},
		{[]Match{{"userName", "a\nb\x00c\x7f"}}, `userName eq "a\u000ab\u0000c\u007f"`},
		{[]Match{{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber", "7"}},
			`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "7"`},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, Filter(tt.match))
		got, err := parseTestFilter(Filter(tt.match))
		require.NoError(t, err)
		assert.Equal(t, tt.match, got)
	}
}

func TestValidateMatch(t *testing.T) {
	t.Parallel()
	require.NoError(t, ValidateMatch([]Match{{"userName", "x"}, {"emails.value", "y"}}))
	require.NoError(t, ValidateMatch([]Match{{"urn:scim:schemas:extension:custom:2.0:costCenter", "x"}}))
	for _, bad := range [][]Match{
		nil,
		{{"userName eq \"x\" or userName", "y"}},
		{{"", "y"}},
		{{"emails[type eq \"work\"].value", "y"}},
		{{"userName", "\xff"}},
	} {
		assert.Error(t, ValidateMatch(bad), "%q", bad)
	}
}

func TestCacheKeyIsCanonical(t *testing.T) {
	t.Parallel()
	a := CacheKey([]Match{{"userName", "x"}, {"externalId", "1"}})
	b := CacheKey([]Match{{"ExternalID", "1"}, {"USERNAME", "x"}})
	assert.Equal(t, a, b)
	assert.NotEqual(t, a, CacheKey([]Match{{"userName", "x"}, {"externalId", "2"}}))
}

// parseTestFilter is a strict RFC 7644 tokenizer for what Filter may produce:
// attrPath SP "eq" SP compValue *(SP "and" SP attrPath SP "eq" SP compValue), compValue a JSON
// string. Anything else is an error, so a value that changed the structure fails the test.
func parseTestFilter(s string) ([]Match, error) {
	var out []Match
	for i := 0; ; {
		j := strings.IndexByte(s[i:], ' ')
		if j < 0 {
			return nil, fmt.Errorf("at %d: no attribute", i)
		}
		attr := s[i : i+j]
		if !attrPath.MatchString(attr) {
			return nil, fmt.Errorf("at %d: bad attribute %q", i, attr)
		}
		i += j
		if !strings.HasPrefix(s[i:], ` eq "`) {
			return nil, fmt.Errorf("at %d: want eq and a string", i)
		}
		i += 4
		end := i + 1
		for ; end < len(s); end++ {
			if s[end] == '\\' {
				end++
				continue
			}
			if s[end] == '"' {
				break
			}
			if s[end] < 0x20 {
				return nil, fmt.Errorf("at %d: raw control character", end)
			}
		}
		if end >= len(s) {
			return nil, fmt.Errorf("at %d: unterminated string", i)
		}
		var v string
		if err := json.Unmarshal([]byte(s[i:end+1]), &v); err != nil {
			return nil, fmt.Errorf("at %d: %w", i, err)
		}
		out = append(out, Match{Attr: attr, Value: v})
		i = end + 1
		if i == len(s) {
			return out, nil
		}
		if !strings.HasPrefix(s[i:], " and ") {
			return nil, fmt.Errorf("at %d: want and, got %q", i, s[i:])
		}
		i += 5
	}
}

// FuzzFilter: whatever the values, the filter parses back to exactly the same conditions.
func FuzzFilter(f *testing.F) {
	for _, seed := range [][2]string{
		{"jdoe", ""}, {`a"b`, `\`}, {`" or userName pr or "`, ") and (x"}, {"Łódź 東京", "\x00\x1f\x7f"},
		{`\"`, `\\"`}, {"or", "and"}, {" ", "\t\n\r"}, {"\xff\xfe", "\u2028"}, {`userName eq "x"`, ")"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, v1, v2 string) {
		match := []Match{{"userName", v1}, {"urn:scim:schemas:extension:custom:2.0:code", v2}}
		got, err := parseTestFilter(Filter(match))
		if err != nil {
			t.Fatalf("Filter(%q) = %s does not parse: %v", match, Filter(match), err)
		}
		want := []Match{{"userName", strings.ToValidUTF8(v1, "\uFFFD")}, {match[1].Attr, strings.ToValidUTF8(v2, "\uFFFD")}}
		if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
			t.Fatalf("Filter(%q) parsed back as %q", match, got)
		}
		if utf8.ValidString(v1) && got[0].Value != v1 {
			t.Fatalf("valid UTF-8 value changed: %q -> %q", v1, got[0].Value)
		}
	})
}
