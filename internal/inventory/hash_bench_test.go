package inventory

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/scimflow/scimflow/internal/reconcile"
)

// BenchmarkHashAnswer is the applied log's cost per write: decoding the target's answer and
// hashing the managed attributes, for a user and for a group of 50 members.
func BenchmarkHashAnswer(b *testing.B) {
	raw, err := os.ReadFile("../../deploy/examples/models/cyberark.yaml")
	if err != nil {
		b.Fatal(err)
	}
	m, err := reconcile.ParseModel("cyberark.yaml", raw)
	if err != nil {
		b.Fatal(err)
	}
	shs, err := shapesOf(m, []string{"User", "Group"})
	if err != nil {
		b.Fatal(err)
	}
	var members []string
	for i := range 50 {
		members = append(members, fmt.Sprintf(`{"value":"u-%08d","display":"user %d","$ref":"https://x/scim/v2/Users/u-%08d","type":"User"}`, i, i, i))
	}
	answers := []string{
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],"id":"u-00000001","userName":"ada@example.com",` +
			`"name":{"givenName":"Ada","familyName":"Lovelace","formatted":"Ada Lovelace"},"displayName":"Ada Lovelace","title":"CTO","active":true,` +
			`"emails":[{"value":"ada@example.com","type":"work","primary":true}],"groups":[{"value":"g-1","display":"Admins"}],` +
			`"meta":{"resourceType":"User","created":"2026-12-04T07:00:00Z","lastModified":"2026-12-04T07:00:00Z","location":"https://x/scim/v2/Users/u-00000001","version":"W/\"3\""}}`,
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"id":"g-1","displayName":"Admins","members":[` + strings.Join(members, ",") + `],` +
			`"meta":{"resourceType":"Group","created":"2026-12-04T07:00:00Z","lastModified":"2026-12-04T07:00:00Z","location":"https://x/scim/v2/Groups/g-1"}}`,
	}
	for i, a := range answers {
		sh := shs[i]
		b.Run(sh.object, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(a)))
			for b.Loop() {
				if _, ok := hashAnswer(sh, []byte(a)); !ok {
					b.Fatal("not hashed")
				}
			}
		})
	}
}
