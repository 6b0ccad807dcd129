package inventory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrLeaseLost says the runner no longer holds the inventory lease: it must write nothing more.
var ErrLeaseLost = errors.New("the inventory lease was lost to another replica")

// ErrLeaseHeld says another replica holds the lease.
var ErrLeaseHeld = errors.New("another replica holds the inventory lease")

// leaseValue is the lease key's value. Token grows by one at every change of holder: the fencing
// token written into what the holder writes.
type leaseValue struct {
	Holder    string    `json:"holder"`
	Token     uint64    `json:"token"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// Lease is the inventory runner's lease, a KV key updated by compare-and-set: acquired when
// absent or expired, renewed by its holder every TTL/3. Valid is false as soon as a renewal
// failed or the lease would have expired, so a holder that was partitioned away stops writing
// before anyone else can acquire it.
type Lease struct {
	kv     jetstream.KeyValue
	holder string
	ttl    time.Duration
	now    func() time.Time

	mu      sync.Mutex
	rev     uint64
	token   uint64
	validTo time.Time
	lost    bool
	stop    chan struct{}
	done    chan struct{}
}

// AcquireLease takes the lease for holder, or fails with ErrLeaseHeld.
func (s *Store) AcquireLease(ctx context.Context, holder string, ttl time.Duration) (*Lease, error) {
	l := &Lease{kv: s.kv, holder: holder, ttl: ttl, now: time.Now}
	now := l.now()
	e, err := s.kv.Get(ctx, keyLease)
	var cur leaseValue
	var rev uint64
	switch {
	case notFound(err):
	case err != nil:
		return nil, fmt.Errorf("read the inventory lease: %w", err)
	default:
		rev = e.Revision()
		_ = json.Unmarshal(e.Value(), &cur)
		if cur.Holder != "" && cur.Holder != holder && now.Before(cur.ExpiresAt) {
			return nil, fmt.Errorf("%w (%s, until %s)", ErrLeaseHeld, cur.Holder, cur.ExpiresAt.Format(time.RFC3339))
		}
	}
	next := leaseValue{Holder: holder, Token: cur.Token + 1, ExpiresAt: now.Add(ttl)}
	raw, _ := json.Marshal(next)
	if rev == 0 && notFound(err) {
		rev, err = s.kv.Create(ctx, keyLease, raw)
	} else {
		rev, err = s.kv.Update(ctx, keyLease, raw, rev)
	}
	if errors.Is(err, jetstream.ErrKeyExists) || wrongRevision(err) {
		return nil, ErrLeaseHeld
	}
	if err != nil {
		return nil, fmt.Errorf("take the inventory lease: %w", err)
	}
	l.rev, l.token, l.validTo = rev, next.Token, now.Add(ttl*2/3)
	l.stop, l.done = make(chan struct{}), make(chan struct{})
	go l.renew()
	return l, nil
}

// Token is the fencing token.
func (l *Lease) Token() uint64 { return l.token }

// Check returns ErrLeaseLost once the lease may be someone else's.
func (l *Lease) Check() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lost || !l.now().Before(l.validTo) {
		l.lost = true
		return ErrLeaseLost
	}
	return nil
}

func (l *Lease) renew() {
	defer close(l.done)
	t := time.NewTicker(l.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		if l.Check() != nil {
			return
		}
		now := l.now()
		raw, _ := json.Marshal(leaseValue{Holder: l.holder, Token: l.token, ExpiresAt: now.Add(l.ttl)})
		ctx, cancel := context.WithTimeout(context.Background(), l.ttl/3)
		rev, err := l.kv.Update(ctx, keyLease, raw, l.rev)
		cancel()
		l.mu.Lock()
		switch {
		case err == nil:
			l.rev, l.validTo = rev, now.Add(l.ttl*2/3)
		case wrongRevision(err):
			l.lost = true // someone else wrote it: it is theirs
		}
		// Other errors: keep trying until validTo passes.
		l.mu.Unlock()
	}
}

// Release stops renewing and gives the lease up (expiring it now) if still held.
func (l *Lease) Release(ctx context.Context) {
	close(l.stop)
	<-l.done
	if l.Check() != nil {
		return
	}
	raw, _ := json.Marshal(leaseValue{Holder: l.holder, Token: l.token, ExpiresAt: time.Time{}})
	_, _ = l.kv.Update(ctx, keyLease, raw, l.rev)
}
