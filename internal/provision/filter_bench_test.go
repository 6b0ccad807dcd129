package provision

import "testing"

// BenchmarkFilter measures building a lookup filter (quoting and escaping a key value) as every
// lookup does. Run with -benchmem; `make bench` prints it.
func BenchmarkFilter(b *testing.B) {
	match := []Match{{Attr: "userName", Value: `o"brien.é@example.com`}}
	b.ReportAllocs()
	for b.Loop() {
		if Filter(match) == "" {
			b.Fatal("empty filter")
		}
	}
}
