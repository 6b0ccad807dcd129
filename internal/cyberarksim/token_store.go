package cyberarksim

import (
	"crypto/rand"
	"crypto/sha256"
	"sync"
	"time"
)

// tokenInfo is what the simulator remembers about an issued access token.
type tokenInfo struct {
	clientID  string
	grant     string
	scope     string
	resources []string
	issued    time.Time
	expires   time.Time
}

// tokenState is the outcome of checking a presented token.
type tokenState int

const (
	tokenValid tokenState = iota + 1
	tokenExpired
	tokenUnknown // never issued, revoked, or swept after expiry
)

// tokenStore issues opaque tokens and checks them. Tokens are kept by SHA-256 digest so the
// store never holds a usable credential once the response is written.
type tokenStore struct {
	mu        sync.Mutex
	tokens    map[[32]byte]*tokenInfo
	lastSweep time.Time
}

func newTokenStore() *tokenStore {
	return &tokenStore{tokens: map[[32]byte]*tokenInfo{}}
}

// issue creates a token valid from now for ttl.
func (ts *tokenStore) issue(info tokenInfo, now time.Time, ttl time.Duration) string {
	tok := rand.Text() + rand.Text() // 2×26 base32 characters: 260 random bits
	info.issued, info.expires = now, now.Add(ttl)
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.tokens[sha256.Sum256([]byte(tok))] = &info
	if len(ts.tokens) > 1024 && now.Sub(ts.lastSweep) > time.Minute {
		ts.lastSweep = now
		for k, t := range ts.tokens {
			if now.After(t.expires.Add(time.Hour)) {
				delete(ts.tokens, k)
			}
		}
	}
	return tok
}

// check reports whether tok is usable at now. expireAfter > 0 shortens every token's life to
// that long after issue (the ExpireTokensAfter fault).
func (ts *tokenStore) check(tok string, now time.Time, expireAfter time.Duration) (tokenState, *tokenInfo) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	t := ts.tokens[sha256.Sum256([]byte(tok))]
	if t == nil {
		return tokenUnknown, nil
	}
	expires := t.expires
	if cut := t.issued.Add(expireAfter); expireAfter > 0 && cut.Before(expires) {
		expires = cut
	}
	if !now.Before(expires) {
		return tokenExpired, t
	}
	return tokenValid, t
}

// revoke forgets tok; it reports whether tok was known and issued to clientID.
func (ts *tokenStore) revoke(tok, clientID string) bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	k := sha256.Sum256([]byte(tok))
	t := ts.tokens[k]
	if t == nil || t.clientID != clientID {
		return false
	}
	delete(ts.tokens, k)
	return true
}
