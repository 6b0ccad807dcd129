package guard

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Pattern protects the objects of one type whose key property matches a glob.
type Pattern struct {
	// Object is the data-model object, spelt as events spell it (User).
	Object string `yaml:"object"`
	// Property is a key property of the object (userName).
	Property string `yaml:"property"`
	// Pattern is a glob on the property's value: * matches any run of characters (/ included),
	// ? one character, everything else itself, without regard to case (breakglass-* protects
	// BreakGlass-01 too: SCIM userNames are case-insensitive).
	Pattern string `yaml:"pattern"`
}

func (p Pattern) String() string { return fmt.Sprintf("%s %s %q", p.Object, p.Property, p.Pattern) }

// Matches reports whether an object of type object with key is protected by p.
func (p Pattern) Matches(object string, key map[string]any) bool {
	if object != p.Object {
		return false
	}
	v, ok := key[p.Property]
	if !ok {
		return false
	}
	text, ok := scalarText(v)
	return ok && glob(strings.ToLower(p.Pattern), strings.ToLower(text))
}

// scalarText is the text of a key value: a string, or a number.
func scalarText(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case int:
		return strconv.Itoa(x), true
	case int64:
		return strconv.FormatInt(x, 10), true
	}
	return "", false
}

// glob matches s against pattern (* and ?), rune by rune, in linear time (the classic
// backtrack-to-the-last-star algorithm).
func glob(pattern, s string) bool {
	px, sx := 0, 0
	starP, starS := -1, 0
	for sx < len(s) {
		if px < len(pattern) {
			pr, pn := utf8.DecodeRuneInString(pattern[px:])
			sr, sn := utf8.DecodeRuneInString(s[sx:])
			switch {
			case pr == '*':
				starP, starS = px, sx
				px += pn
				continue
			case pr == '?' || pr == sr:
				px += pn
				sx += sn
				continue
			}
		}
		if starP < 0 {
			return false
		}
		// Let the last star swallow one more rune and try again from there.
		_, sn := utf8.DecodeRuneInString(s[starS:])
		starS += sn
		px, sx = starP+1, starS
	}
	for px < len(pattern) && pattern[px] == '*' {
		px++
	}
	return px == len(pattern)
}
