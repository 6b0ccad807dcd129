package events

import "testing"

// BenchmarkDecode measures intake: parsing and validating one event as the consume loop does
// (JSON Schema included). Run with -benchmem; `make bench` prints it.
func BenchmarkDecode(b *testing.B) {
	raw, err := NewEvent("hr-000123", "/hr/workday", Change{Object: "User", Operation: OpUpdate,
		Key: map[string]any{"userName": "jdoe@example.com"},
		Attributes: map[string]any{"name.givenName": "John", "name.familyName": "Doe", "title": "CTO",
			"emails[].value": []any{"jdoe@example.com"}, "active": true}}).Encode()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := Decode(raw); err != nil {
			b.Fatal(err)
		}
	}
}
