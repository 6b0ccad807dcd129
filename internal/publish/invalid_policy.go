package publish

import (
	"fmt"
	"strings"
)

// InvalidPolicy says what Run does with items that fail validation (Item.Invalid): lines that are
// not JSON, and JSON that is not a valid event.
type InvalidPolicy int

const (
	// PublishInvalid publishes them: the worker dead-letters each with its reason. It is the zero
	// value for callers that publish malformed events on purpose (the demo's sample file has one);
	// the publisher command refuses by default.
	PublishInvalid InvalidPolicy = iota
	// RefuseInvalid publishes nothing when any item is invalid: Run returns an *InvalidError.
	RefuseInvalid
	// SkipInvalid leaves them out (Report.Skipped) and publishes the rest.
	SkipInvalid
)

func (p InvalidPolicy) String() string {
	switch p {
	case PublishInvalid:
		return "publish"
	case RefuseInvalid:
		return "refuse"
	case SkipInvalid:
		return "skip"
	}
	return fmt.Sprintf("InvalidPolicy(%d)", int(p))
}

// InvalidError is Run's refusal of an input with invalid items (RefuseInvalid): nothing was
// published. Its message names the first few bad lines as source:line: problem, and the total.
type InvalidError struct {
	// Source names the input, e.g. the file name (Options.Source).
	Source string
	// Bad are the invalid items, in input order.
	Bad []Item
	// Total is the number of items read, valid or not.
	Total int
}

// invalidShown is how many bad lines an InvalidError names.
const invalidShown = 5

func (e *InvalidError) Error() string {
	var b strings.Builder
	notJSON := 0
	for _, it := range e.Bad {
		if it.NotJSON {
			notJSON++
		}
	}
	fmt.Fprintf(&b, "%s: %d of %d lines are not valid events", e.Source, len(e.Bad), e.Total)
	if notJSON > 0 {
		fmt.Fprintf(&b, " (%d of them not JSON at all)", notJSON)
	}
	b.WriteString("; nothing published:")
	for _, it := range e.Bad[:min(len(e.Bad), invalidShown)] {
		fmt.Fprintf(&b, "\n  %s", problemLine(e.Source, it))
	}
	if n := len(e.Bad) - invalidShown; n > 0 {
		fmt.Fprintf(&b, "\n  and %d more invalid lines", n)
	}
	return b.String()
}

// problemLine is "source:line: event "id": problem" ("source:line: not JSON: ..." for a line that
// is not JSON), shortened to one readable line.
func problemLine(source string, it Item) string {
	if it.NotJSON {
		return fmt.Sprintf("%s:%d: %s", source, it.Line, it.Problem())
	}
	return fmt.Sprintf("%s:%d: event %q: %s", source, it.Line, it.ID, oneLine(it.Problem(), reasonWidth))
}

// Invalid returns the items that fail validation, in input order.
func Invalid(items []Item) []Item {
	var out []Item
	for _, it := range items {
		if it.Invalid != nil {
			out = append(out, it)
		}
	}
	return out
}

// DescribeInvalid writes "source:line: problem" for the first few invalid items and a count of the
// rest, for a caller that publishes or skips them and says so.
func DescribeInvalid(source string, bad []Item) string {
	var b strings.Builder
	for _, it := range bad[:min(len(bad), invalidShown)] {
		fmt.Fprintf(&b, "%s\n", problemLine(source, it))
	}
	if n := len(bad) - invalidShown; n > 0 {
		fmt.Fprintf(&b, "%s: and %d more invalid lines\n", source, n)
	}
	return b.String()
}
