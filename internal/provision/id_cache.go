package provision

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// IDCache maps an object key to the target's id, so that an update or delete usually needs no
// lookup. Implementations treat their own failures as misses: the cache only saves requests.
type IDCache interface {
	Get(ctx context.Context, resource, key string) (id string, ok bool)
	Put(ctx context.Context, resource, key, id string)
	Delete(ctx context.Context, resource, key string)
}

// conditionalDeleter is implemented by caches that can drop an entry only while it still holds
// a given id, so that a worker that saw a stale id cannot delete a fresher one another wrote.
type conditionalDeleter interface {
	DeleteIf(ctx context.Context, resource, key, id string)
}

// CacheKey is the key under which Resolve caches a lookup: the canonical filter (conditions
// sorted, attribute names lower-cased) so that the same lookup written in another order hits.
func CacheKey(match []Match) string { return canonicalFilter(match) }

// kvKey turns resource and cache key into a NATS KV key ([-/_=.a-zA-Z0-9]+): the resource
// (sanitised, for people reading the bucket) and a SHA-256 of both.
func kvKey(resource, key string) string {
	sum := sha256.Sum256([]byte(resource + "\x00" + key))
	var b strings.Builder
	b.WriteString("id.")
	for _, r := range resource {
		if r < 128 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	b.WriteByte('.')
	b.WriteString(hex.EncodeToString(sum[:20]))
	return b.String()
}
