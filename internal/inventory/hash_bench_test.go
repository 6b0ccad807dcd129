package inventory

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/scimflow/scimflow/internal/reconcile"
)

// BenchmarkHashAnswer is the applied log's cost per write: decoding the target's answer and
// hashing the managed attributes, for a user, a group of 50 members and one of 5,000 (a membership
// change's answer lists every member).
func BenchmarkHashAnswer(b *testing.B) {
	shs, err := shapesOf(exampleModel(b), []string{"User", "Group"})
	if err != nil {
		b.Fatal(err)
	}
	// A group's answer with n members, ids as CyberArk's (UUIDs, here from a fixed seed).
	group := func(n int) string {
		rnd := rand.New(rand.NewPCG(1, uint64(n)))
		members := make([]string, n)
		for i := range members {
			id := fmt.Sprintf("%08x-%04x-4%03x-a%03x-%012x", rnd.Uint32(), rnd.Uint32()&0xffff, rnd.Uint32()&0xfff, rnd.Uint32()&0xfff, rnd.Uint64()&0xffffffffffff)
			members[i] = fmt.Sprintf(`{"value":"%s","display":"user %d","$ref":"https://x/scim/v2/Users/%s","type":"User"}`, id, i, id)
		}
		return `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"id":"g-1","displayName":"Admins","members":[` + strings.Join(members, ",") + `],` +
			`"meta":{"resourceType":"Group","created":"2026-12-04T07:00:00Z","lastModified":"2026-12-04T07:00:00Z","location":"https://x/scim/v2/Groups/g-1"}}`
	}
	answers := []string{userAnswer, groupAnswer(50)}
	cases := []struct {
		name, answer string
		sh           *shape
	}{{"User", answers[0], shs[0]}, {"Group", answers[1], shs[1]}, {"Group/5000", group(5000), shs[1]}}
	for _, c := range cases {
		a, sh := []byte(c.answer), c.sh // the answer as the client read it, not a copy per write
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(a)))
			for b.Loop() {
				if _, ok := hashAnswer(sh, a); !ok {
					b.Fatal("not hashed")
				}
			}
		})
	}
}

// exampleModel is the shipped CyberArk data model.
func exampleModel(b testing.TB) *reconcile.Model {
	raw, err := os.ReadFile("../../deploy/examples/models/cyberark.yaml")
	if err != nil {
		b.Fatal(err)
	}
	m, err := reconcile.ParseModel("cyberark.yaml", raw)
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// userAnswer is a CyberArk user as the target answers a write.
const userAnswer = `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],"id":"u-00000001","userName":"ada@example.com",` +
	`"name":{"givenName":"Ada","familyName":"Lovelace","formatted":"Ada Lovelace"},"displayName":"Ada Lovelace","title":"CTO","active":true,` +
	`"emails":[{"value":"ada@example.com","type":"work","primary":true}],"groups":[{"value":"g-1","display":"Admins"}],` +
	`"meta":{"resourceType":"User","created":"2026-12-04T07:00:00Z","lastModified":"2026-12-04T07:00:00Z","location":"https://x/scim/v2/Users/u-00000001","version":"W/\"3\""}}`

// groupAnswer is a group of n members (ids u-00000000 on) as the target answers a membership change.
func groupAnswer(n int) string {
	members := make([]string, n)
	for i := range members {
		members[i] = fmt.Sprintf(`{"value":"u-%08d","display":"user %d","$ref":"https://x/scim/v2/Users/u-%08d","type":"User"}`, i, i, i)
	}
	return `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"id":"g-1","displayName":"Admins","members":[` + strings.Join(members, ",") + `],` +
		`"meta":{"resourceType":"Group","created":"2026-12-04T07:00:00Z","lastModified":"2026-12-04T07:00:00Z","location":"https://x/scim/v2/Groups/g-1"}}`
}
