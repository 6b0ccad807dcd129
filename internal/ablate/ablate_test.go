package ablate

import (
	"maps"
	"slices"
	"testing"
)

func TestNames(t *testing.T) {
	got := names(" applied,history ")
	for _, f := range Features {
		if !got[f] {
			t.Errorf("names(%q) lacks %q: %v", " applied,history ", f, slices.Sorted(maps.Keys(got)))
		}
	}
	if names("history")["applied"] {
		t.Error(`names("history") names applied`)
	}
}
