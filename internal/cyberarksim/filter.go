package cyberarksim

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The filter language the simulator accepts is the part of RFC 7644 §3.4.2.2 that CyberArk
// documents: attribute paths compared with eq, sw, co or ew to a JSON value, joined by "and".
//
//	filter   = term *( SP "and" SP term )         ; "and" is case-insensitive
//	term     = attrPath SP compareOp SP compValue
//	attrPath = [ urn ":" ] ATTRNAME [ "." ATTRNAME ]
//	compValue = JSON string / "true" / "false" / JSON number
//
// Everything else RFC 7644 defines (or, not, pr, gt/ge/lt/le/ne, parentheses, value filters in
// brackets, null) and everything it does not (single quotes, bare words) is rejected with a
// message naming the problem and its byte offset.

// filterOp is a supported comparison operator.
type filterOp string

const (
	opEq filterOp = "eq"
	opSw filterOp = "sw"
	opCo filterOp = "co"
	opEw filterOp = "ew"
)

// valueKind says what kind of JSON value a comparison holds.
type valueKind int

const (
	kindString valueKind = iota + 1
	kindBool
	kindNumber
)

// filterValue is the right-hand side of a comparison.
type filterValue struct {
	kind valueKind
	str  string // kindString: the decoded string; kindNumber: the literal
	b    bool
}

func (v filterValue) String() string {
	switch v.kind {
	case kindString:
		b, _ := json.Marshal(v.str)
		return string(b)
	case kindBool:
		return strconv.FormatBool(v.b)
	default:
		return v.str
	}
}

// rawPath is an attribute path as written: an optional schema URN, an attribute, an optional
// sub-attribute.
type rawPath struct {
	urn  string
	attr string
	sub  string
}

func (p rawPath) String() string {
	var b strings.Builder
	if p.urn != "" {
		b.WriteString(p.urn)
		b.WriteByte(':')
	}
	b.WriteString(p.attr)
	if p.sub != "" {
		b.WriteByte('.')
		b.WriteString(p.sub)
	}
	return b.String()
}

// filterTerm is one comparison.
type filterTerm struct {
	path  rawPath
	op    filterOp
	value filterValue
}

// Filter is a parsed filter: a conjunction of comparisons.
type Filter struct {
	terms []filterTerm
}

// String renders f in canonical form (lower-case operators and "and", JSON values); parsing the
// result yields an equal Filter.
func (f Filter) String() string {
	parts := make([]string, len(f.terms))
	for i, t := range f.terms {
		parts[i] = t.path.String() + " " + string(t.op) + " " + t.value.String()
	}
	return strings.Join(parts, " and ")
}

// filterSyntaxError is a parse failure with the byte offset where it was found.
type filterSyntaxError struct {
	pos int
	msg string
}

func (e *filterSyntaxError) Error() string {
	return fmt.Sprintf("%s (at offset %d)", e.msg, e.pos)
}

// maxFilterLength bounds the filter text; longer filters are refused before parsing.
const maxFilterLength = 8192

// maxFilterTerms bounds the number of comparisons joined by "and".
const maxFilterTerms = 64

// ParseFilter parses a SCIM filter expression. It never panics; every error is a
// *filterSyntaxError naming the problem.
func ParseFilter(s string) (Filter, error) {
	p := &filterParser{in: s}
	f, err := p.parse(false)
	if err != nil {
		return Filter{}, err
	}
	return f, nil
}

type filterParser struct {
	in  string
	pos int
}

func (p *filterParser) fail(pos int, format string, args ...any) error {
	return &filterSyntaxError{pos: pos, msg: fmt.Sprintf(format, args...)}
}

// parse reads terms joined by "and". In bracket mode (a PATCH value filter) it stops before an
// unquoted ']' instead of requiring the end of input.
func (p *filterParser) parse(bracket bool) (Filter, error) {
	if len(p.in) > maxFilterLength {
		return Filter{}, p.fail(0, "filter is %d bytes long; the limit is %d", len(p.in), maxFilterLength)
	}
	if !utf8.ValidString(p.in) {
		return Filter{}, p.fail(0, "filter is not valid UTF-8")
	}
	var f Filter
	p.skipSpace()
	if p.atEnd(bracket) {
		return Filter{}, p.fail(p.pos, "filter is empty")
	}
	for {
		t, err := p.term(bracket)
		if err != nil {
			return Filter{}, err
		}
		f.terms = append(f.terms, t)
		if len(f.terms) > maxFilterTerms {
			return Filter{}, p.fail(p.pos, "filter has more than %d comparisons", maxFilterTerms)
		}
		spaced := p.skipSpace()
		if p.atEnd(bracket) {
			return f, nil
		}
		start := p.pos
		if !spaced {
			return Filter{}, p.fail(start, "expected a space after the value, found %q", p.rest(12))
		}
		word := p.word()
		switch strings.ToLower(word) {
		case "and":
			if !p.skipSpace() {
				return Filter{}, p.fail(p.pos, "expected a space after \"and\"")
			}
			if p.atEnd(bracket) {
				return Filter{}, p.fail(p.pos, "expected a comparison after \"and\"")
			}
		case "or":
			return Filter{}, p.fail(start, "logical operator \"or\" is not supported; only \"and\" is")
		case "":
			return Filter{}, p.unexpected(start, bracket)
		default:
			return Filter{}, p.fail(start, "expected \"and\" or the end of the filter, found %q", word)
		}
	}
}

// term reads attrPath SP op SP value.
func (p *filterParser) term(bracket bool) (filterTerm, error) {
	start := p.pos
	if p.pos < len(p.in) {
		switch p.in[p.pos] {
		case '(', ')':
			return filterTerm{}, p.fail(start, "parentheses are not supported")
		case '"', '\'':
			return filterTerm{}, p.fail(start, "expected an attribute name, found a quoted value")
		}
	}
	tok := p.pathToken()
	if tok == "" {
		return filterTerm{}, p.unexpected(start, bracket)
	}
	if strings.EqualFold(tok, "not") && p.nextNonSpace() == '(' {
		return filterTerm{}, p.fail(start, "logical operator \"not\" is not supported")
	}
	path, err := parseRawPath(tok)
	if err != nil {
		return filterTerm{}, p.fail(start, "%s", err)
	}
	if p.pos < len(p.in) && p.in[p.pos] == '[' {
		return filterTerm{}, p.fail(p.pos, "value filters in brackets are not supported in a filter parameter")
	}
	if !p.skipSpace() || p.atEnd(bracket) {
		return filterTerm{}, p.fail(p.pos, "expected an operator after %q", tok)
	}
	opPos := p.pos
	word := p.word()
	var op filterOp
	switch strings.ToLower(word) {
	case "eq", "sw", "co", "ew":
		op = filterOp(strings.ToLower(word))
	case "pr":
		return filterTerm{}, p.fail(opPos, "operator \"pr\" is not supported (supported: eq, sw, co, ew)")
	case "ne", "gt", "ge", "lt", "le":
		return filterTerm{}, p.fail(opPos, "operator %q is not supported (supported: eq, sw, co, ew)", strings.ToLower(word))
	case "":
		return filterTerm{}, p.fail(opPos, "expected an operator after %q, found %q", tok, p.rest(12))
	default:
		return filterTerm{}, p.fail(opPos, "unknown operator %q (supported: eq, sw, co, ew)", word)
	}
	if !p.skipSpace() || p.atEnd(bracket) {
		return filterTerm{}, p.fail(p.pos, "expected a value after %q", word)
	}
	v, err := p.value()
	if err != nil {
		return filterTerm{}, err
	}
	return filterTerm{path: path, op: op, value: v}, nil
}

// value reads a JSON string, true, false or a JSON number.
func (p *filterParser) value() (filterValue, error) {
	start := p.pos
	c := p.in[p.pos]
	switch {
	case c == '"':
		s, err := p.jsonString()
		if err != nil {
			return filterValue{}, err
		}
		return filterValue{kind: kindString, str: s}, nil
	case c == '\'':
		return filterValue{}, p.fail(start, "values must be JSON strings in double quotes, not single quotes")
	case c == '-' || (c >= '0' && c <= '9'):
		lit := p.word()
		if !isJSONNumber(lit) {
			return filterValue{}, p.fail(start, "%q is not a JSON number", lit)
		}
		return filterValue{kind: kindNumber, str: lit}, nil
	}
	word := p.word()
	switch word {
	case "true", "false":
		return filterValue{kind: kindBool, b: word == "true"}, nil
	case "null":
		return filterValue{}, p.fail(start, "null comparisons are not supported")
	case "":
		return filterValue{}, p.fail(start, "expected a value, found %q", p.rest(12))
	}
	return filterValue{}, p.fail(start, "value %q must be a JSON string in double quotes, true, false or a number", word)
}

// jsonString reads a JSON string literal (RFC 8259 §7) starting at the opening quote and returns
// the decoded text.
func (p *filterParser) jsonString() (string, error) {
	start := p.pos
	i := p.pos + 1
	for i < len(p.in) {
		c := p.in[i]
		switch {
		case c == '"':
			lit := p.in[start : i+1]
			var s string
			if err := json.Unmarshal([]byte(lit), &s); err != nil {
				return "", p.fail(start, "invalid JSON string %s", lit)
			}
			p.pos = i + 1
			return s, nil
		case c == '\\':
			if i+1 >= len(p.in) {
				return "", p.fail(i, "unterminated escape sequence in string")
			}
			switch p.in[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(p.in) || !isHex4(p.in[i+2:i+6]) {
					return "", p.fail(i, "invalid \\u escape in string; four hex digits expected")
				}
				i += 6
			default:
				return "", p.fail(i, "invalid escape \\%c in string", p.in[i+1])
			}
		case c < 0x20:
			return "", p.fail(i, "control character 0x%02x must be escaped in a string", c)
		default:
			i++
		}
	}
	return "", p.fail(start, "unterminated string")
}

// pathToken reads an attribute path: everything up to a space, '[', ']', a quote or the end.
func (p *filterParser) pathToken() string {
	start := p.pos
	for p.pos < len(p.in) {
		c := p.in[p.pos]
		if isSpace(c) || c == '[' || c == ']' || c == '"' || c == '\'' || c == '(' || c == ')' {
			break
		}
		p.pos++
	}
	return p.in[start:p.pos]
}

// word reads up to the next space, bracket, quote or parenthesis.
func (p *filterParser) word() string { return p.pathToken() }

// nextNonSpace returns the next byte after spaces without consuming anything, or 0 at the end.
func (p *filterParser) nextNonSpace() byte {
	for i := p.pos; i < len(p.in); i++ {
		if !isSpace(p.in[i]) {
			return p.in[i]
		}
	}
	return 0
}

func (p *filterParser) skipSpace() bool {
	start := p.pos
	for p.pos < len(p.in) && isSpace(p.in[p.pos]) {
		p.pos++
	}
	return p.pos > start
}

func (p *filterParser) atEnd(bracket bool) bool {
	if p.pos >= len(p.in) {
		return true
	}
	return bracket && p.in[p.pos] == ']'
}

func (p *filterParser) rest(n int) string {
	r := p.in[p.pos:]
	if len(r) > n {
		r = r[:n] + "…"
	}
	return r
}

func (p *filterParser) unexpected(pos int, bracket bool) error {
	if pos >= len(p.in) {
		return p.fail(pos, "unexpected end of filter")
	}
	switch c := p.in[pos]; c {
	case '(', ')':
		return p.fail(pos, "parentheses are not supported")
	case '[':
		return p.fail(pos, "value filters in brackets are not supported in a filter parameter")
	case ']':
		if bracket {
			return p.fail(pos, "unexpected ']'")
		}
		return p.fail(pos, "unbalanced ']'")
	}
	return p.fail(pos, "unexpected %q", p.in[pos:pos+1])
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func isHex4(s string) bool {
	for i := 0; i < 4; i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// isJSONNumber reports whether s is a number per RFC 8259 §6.
func isJSONNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	if i >= len(s) {
		return false
	}
	if s[i] == '0' {
		i++
	} else if s[i] >= '1' && s[i] <= '9' {
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	} else {
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if i >= len(s) || !isDigit(s[i]) {
			return false
		}
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i >= len(s) || !isDigit(s[i]) {
			return false
		}
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	return i == len(s)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// parseRawPath splits an attribute path into URN, attribute and sub-attribute and checks the
// RFC 7644 ATTRNAME grammar (ALPHA *(ALPHA / DIGIT / "-" / "_"), plus "$ref").
func parseRawPath(tok string) (rawPath, error) {
	var p rawPath
	rest := tok
	if len(tok) >= 4 && strings.EqualFold(tok[:4], "urn:") {
		i := strings.LastIndexByte(tok, ':')
		p.urn, rest = tok[:i], tok[i+1:]
		if !isURN(p.urn) {
			return rawPath{}, fmt.Errorf("invalid schema URN %q", p.urn)
		}
		if rest == "" {
			return rawPath{}, fmt.Errorf("attribute name missing after schema URN %q", p.urn)
		}
	}
	attr, sub, dotted := strings.Cut(rest, ".")
	if !isAttrName(attr) {
		return rawPath{}, fmt.Errorf("invalid attribute name %q", attr)
	}
	p.attr = attr
	if dotted {
		if !isAttrName(sub) && sub != "$ref" {
			return rawPath{}, fmt.Errorf("invalid sub-attribute name %q in %q", sub, tok)
		}
		p.sub = sub
	}
	return p, nil
}

func isAttrName(s string) bool {
	if s == "" || !isAlpha(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !isAlpha(c) && !isDigit(c) && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// isURN accepts "urn:" followed by colon-separated segments of letters, digits and . _ - + %.
func isURN(s string) bool {
	if len(s) < 5 || !strings.EqualFold(s[:4], "urn:") {
		return false
	}
	for _, seg := range strings.Split(s[4:], ":") {
		if seg == "" {
			return false
		}
		for i := 0; i < len(seg); i++ {
			c := seg[i]
			if !isAlpha(c) && !isDigit(c) && !strings.ContainsRune("._-+%", rune(c)) {
				return false
			}
		}
	}
	return true
}
