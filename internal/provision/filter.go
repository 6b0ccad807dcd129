package provision

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"
)

// Match is one attribute = value condition of a lookup: an isKey property (Resolve Object ID) or
// a referenceLookupProperty (Resolve Reference Property).
type Match struct {
	Attr, Value string
}

// Filter renders the RFC 7644 §3.4.2.2 filter `a eq "v" and b eq "w"`. Each value is a JSON
// string (RFC 8259): '"' and '\' are escaped, control characters use \uXXXX, everything else,
// non-ASCII included, is kept as UTF-8, so no value can change the filter's structure. Invalid
// UTF-8 cannot be represented in JSON and becomes U+FFFD; Resolve refuses such values instead.
// Attribute names are written as given: validate them with ValidateMatch.
func Filter(match []Match) string {
	var b strings.Builder
	for i, m := range match {
		if i > 0 {
			b.WriteString(" and ")
		}
		b.WriteString(m.Attr)
		b.WriteString(" eq ")
		writeJSONString(&b, m.Value)
	}
	return b.String()
}

const hexDigits = "0123456789abcdef"

func writeJSONString(b *strings.Builder, s string) {
	b.WriteByte('"')
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			b.WriteString(`\u00`)
			b.WriteByte(hexDigits[r>>4])
			b.WriteByte(hexDigits[r&0xf])
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
}

// attrPath is RFC 7644's attrPath: an optional schema URN, an attribute name and an optional
// sub-attribute.
var attrPath = regexp.MustCompile(`^(?:urn:[A-Za-z0-9._:-]+:)?[A-Za-z][A-Za-z0-9_$-]*(?:\.[A-Za-z][A-Za-z0-9_$-]*)?$`)

// ValidateMatch checks that a lookup has at least one condition, that every attribute is an
// RFC 7644 attribute path and every value valid UTF-8.
func ValidateMatch(match []Match) error {
	if len(match) == 0 {
		return errors.New("lookup has no key attributes")
	}
	var errs []error
	for i, m := range match {
		if !attrPath.MatchString(m.Attr) {
			errs = append(errs, fmt.Errorf("key %d: attribute %q is not a SCIM attribute path", i, m.Attr))
		}
		if !utf8.ValidString(m.Value) {
			errs = append(errs, fmt.Errorf("key %d: value of %s is not valid UTF-8", i, m.Attr))
		}
	}
	return errors.Join(errs...)
}

// canonicalFilter is the filter with conditions sorted by attribute (case-insensitively, as SCIM
// attribute names are) and value: the same lookup written in another order has the same cache key.
func canonicalFilter(match []Match) string {
	sorted := append([]Match(nil), match...)
	for i := range sorted {
		sorted[i].Attr = strings.ToLower(sorted[i].Attr)
	}
	sort.Slice(sorted, func(i, j int) bool {
		if sorted[i].Attr != sorted[j].Attr {
			return sorted[i].Attr < sorted[j].Attr
		}
		return sorted[i].Value < sorted[j].Value
	})
	return Filter(sorted)
}
