package ablate

import (
	"maps"
	"slices"
	"testing"
)

func TestNames(t *testing.T) {
	const list = " applied,appliedwrite, history "
	got := names(list)
	for _, f := range Features {
		if !got[f] {
			t.Errorf("names(%q) lacks %q: %v", list, f, slices.Sorted(maps.Keys(got)))
		}
	}
	if names("history")["applied"] {
		t.Error(`names("history") names applied`)
	}
	if names("appliedwrite")["applied"] {
		t.Error(`names("appliedwrite") names applied`)
	}
}
