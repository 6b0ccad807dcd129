package events

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// PoolBucket is the JetStream key-value bucket where the workers of a pool announce themselves.
const PoolBucket = "IDM_POOL"

// Defaults of PoolConfig.
const (
	DefaultHeartbeat = time.Second
	DefaultMemberTTL = 10 * time.Second
)

// PoolConfig configures a worker's membership of the pool.
type PoolConfig struct {
	// Member names this worker in the pool; it must be unique among running workers. Default: the
	// worker name with a random suffix.
	Member string
	// Heartbeat is how often the worker renews its membership and reads the others'. Default 1s.
	Heartbeat time.Duration
	// TTL is how long a member that stopped renewing (killed, partitioned away) keeps its
	// partitions. Default 10s.
	TTL time.Duration
	// Replicas of the pool bucket.
	Replicas int
	Logger   zerolog.Logger
}

// Member is what a worker announces in the pool bucket.
type Member struct {
	Name    string    `json:"name"`
	Worker  string    `json:"worker"`
	Started time.Time `json:"started"`
	Seen    time.Time `json:"seen"`
	// Holds are the partitions the worker consumes or still has events of: those it owns, one it
	// is binding, and one it hands over until the last event it ran or held there is done or
	// handed back. Another worker does not run a partition a live member holds (Pool.HeldElsewhere).
	Holds []int `json:"holds,omitempty"`
	// Delivered is, for each partition the worker holds or let go of in the last minute, the
	// highest stream sequence JetStream delivered to it there: the events a JetStream server
	// restarted from an older consumer state may deliver again as if for the first time, after
	// this worker ran them.
	Delivered map[int]uint64 `json:"delivered,omitempty"`
	// Leaving is set by a worker shutting down: the others take its partitions at once (Assign
	// leaves it out) but do not run one it still holds until it is gone.
	Leaving bool `json:"leaving,omitempty"`
	// Settled says the worker trusts the absence of a member's claim (Pool.Settled): it has read
	// the pool, uninterrupted, for a whole TTL, or since another member said it had. Until then a
	// partition that ran before does not open for it on the absence of claims. An entry without
	// it (a worker that is settling, or one older than the field) vouches for nobody.
	Settled bool `json:"settled,omitempty"`
	// Vanished names the members whose entries vanished without a delete that the worker still
	// counts in, with their partitions, for a grace (Pool.Vanished).
	Vanished []string `json:"vanished,omitempty"`
}

// Pool is a worker's view of the pool: the live members, renewed every heartbeat, and the
// partitions rendezvous hashing assigns to each. Membership lives in a JetStream key-value bucket
// whose entries expire TTL after their last renewal; exclusion is the server's (pinned-client
// priority groups on each partition's consumer), so two workers that briefly disagree about the
// membership still never consume one partition at once.
type Pool struct {
	js  jetstream.JetStream
	kv  jetstream.KeyValue
	cfg PoolConfig
	me  Member
	log zerolog.Logger

	mu      sync.Mutex
	members []string
	// holds reports the partitions this worker holds and what it was delivered there
	// (Member.Holds, Member.Delivered), read at every announcement.
	holds func() ([]int, map[int]uint64)
	// wmu orders this worker's announcements: the one written last says what it holds now.
	wmu sync.Mutex

	// Reads of the bucket are shared (freshMembers): rsem runs one at a time, next is the read the
	// callers asking now will share (nil: none asked since the last one began), reads counts the
	// reads made.
	rsem  chan struct{}
	nmu   sync.Mutex
	next  *membersRead
	reads atomic.Int64
	// afterRead, when set (tests), runs after each read of the bucket, before its callers are
	// given it.
	afterRead func()

	// vmu guards what this worker remembers of the others (remember): known, the members it has
	// read, with what they held and when their entries vanished; lastRead, its last read of the
	// bucket; failed, whether a read or a renewal failed since; resumed, the first read after the
	// last interruption of its view of the bucket; since, the first read of its view as it stands,
	// uninterrupted (resumed, or its first read).
	vmu      sync.Mutex
	known    map[string]knownMember
	lastRead time.Time
	failed   bool
	resumed  time.Time
	since    time.Time
	// vouched is the last read that found another member settled (Member.Settled): from it on,
	// while this worker's view is not interrupted, it trusts the absence of claims as that member
	// does (Settled).
	vouched time.Time
}

// knownMember is a member as this worker last read it.
type knownMember struct {
	Member
	vanished time.Time // when its entry was first found gone without a delete (zero: live)
}

// vanishGrace is how long at least a member whose entry vanished without a delete stays in the
// pool (remember): long enough for a worker still running to write its entry again after its
// client reconnected (within about 2 s). A worker killed with kill -9 loses nothing by it: its entry
// expires 10 s after its last heartbeat, and the server keeps its partitions pinned for 15 s after
// its last pull.
func (p *Pool) vanishGrace() time.Duration { return 2*p.cfg.Heartbeat + 2*time.Second }

// noteFailure records that a read or a renewal of this worker's entry failed: its view of the
// bucket is interrupted (remember).
func (p *Pool) noteFailure() {
	p.vmu.Lock()
	p.failed = true
	p.vmu.Unlock()
}

// remember keeps what a read of the bucket said of each member. A member deleted its entry when it
// left, and is forgotten. One whose entry is gone without a delete expired: a worker killed, or
// one still running whose renewals did not reach the bucket, such as every worker while a
// JetStream server was down longer than the TTL (it comes back without any entry). Such a member
// stays in the pool, with what it last said it held, for vanishGrace after its entry was found
// gone, and, when it was found gone by the first read after this worker's own view of the bucket
// was interrupted (a failed read or renewal, or reads further apart than vanishGrace), until a
// whole TTL has passed since that read: the others had no more time than this worker to renew.
func (p *Pool) remember(members []Member, deleted map[string]bool) {
	now := time.Now()
	p.vmu.Lock()
	defer p.vmu.Unlock()
	if p.known == nil {
		p.known = map[string]knownMember{}
	}
	// Reads further apart than the grace a vanished member gets mean the view was interrupted.
	interrupted := p.failed || !p.lastRead.IsZero() && now.Sub(p.lastRead) > p.vanishGrace()
	if interrupted {
		p.resumed = now
	}
	if interrupted || p.lastRead.IsZero() {
		p.since = now
	}
	p.failed, p.lastRead = false, now
	live := map[string]bool{}
	for _, m := range members {
		live[m.Name] = true
		p.known[m.Name] = knownMember{Member: m}
		if m.Settled && m.Name != p.me.Name {
			p.vouched = now
		}
	}
	for name, k := range p.known {
		switch {
		case live[name]:
		case deleted[name]:
			delete(p.known, name)
		case k.vanished.IsZero():
			k.vanished = now
			p.known[name] = k
		case !p.keeps(k, now):
			delete(p.known, name)
		}
	}
}

// Settled says whether this worker trusts that a member it does not see holds nothing: its view
// of the pool bucket is whole now (no failed read or renewal since its last read, which is at most
// vanishGrace old), and it has read the bucket, uninterrupted, for a whole TTL, long enough for
// every live member to have written its entry since, or another member said it had (its entry's
// Settled) in a read since this worker's view was last interrupted.
//
// Until then a member it does not see may be alive and hold partitions: one whose entry a
// JetStream server, down longer than the TTL, dropped before this worker joined or while its own
// view was interrupted, and that has not renewed it yet (its client reconnects within about 2 s,
// and a renewal under way when the server went away fails only after 5 s). A member that says it
// is settled had the bucket in view for the TTL before its renewal: no such outage happened then,
// and one after it would have dropped its entry too (or made it renew unsettled), so the entry
// read vouches for the bucket as this worker sees it. A worker that joins a running pool so
// trusts its claims at once instead of 10 s later; after an outage longer than the TTL every
// member's view was interrupted, and nobody vouches until one has read for a whole TTL again.
func (p *Pool) Settled() bool {
	p.vmu.Lock()
	defer p.vmu.Unlock()
	switch {
	case p.failed || p.since.IsZero() || time.Since(p.lastRead) > p.vanishGrace():
		return false
	case time.Since(p.since) >= p.cfg.TTL:
		return true
	}
	return !p.vouched.Before(p.since)
}

// Vanished names the members whose entries vanished and that are still in the pool (remember).
func (p *Pool) Vanished() []string {
	var names []string
	for _, m := range p.vanished() {
		names = append(names, m.Name)
	}
	return names
}

// keeps says whether member k, whose entry vanished, is still in the pool (remember). Callers hold
// vmu.
func (p *Pool) keeps(k knownMember, now time.Time) bool {
	return now.Sub(k.vanished) <= p.vanishGrace() ||
		!k.vanished.Before(p.resumed) && now.Sub(p.resumed) < p.cfg.TTL
}

// vanished returns the members whose entries vanished and that are still in the pool (remember),
// this worker left out.
func (p *Pool) vanished() []Member {
	now := time.Now()
	p.vmu.Lock()
	defer p.vmu.Unlock()
	var out []Member
	for _, k := range p.known {
		if !k.vanished.IsZero() && k.Name != p.me.Name && p.keeps(k, now) {
			out = append(out, k.Member)
		}
	}
	slices.SortFunc(out, func(a, b Member) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// membersRead is one read of the pool bucket, shared by the callers that asked before it began.
type membersRead struct {
	done    bool
	members []Member
	err     error
}

// JoinPool creates (or opens) the pool bucket and announces this worker.
func JoinPool(ctx context.Context, js jetstream.JetStream, worker string, cfg PoolConfig) (*Pool, error) {
	cfg.Heartbeat = cmp.Or(cfg.Heartbeat, DefaultHeartbeat)
	cfg.TTL = cmp.Or(cfg.TTL, DefaultMemberTTL)
	cfg.Replicas = cmp.Or(cfg.Replicas, 1)
	if cfg.Member == "" {
		cfg.Member = fmt.Sprintf("%s-%s", cmp.Or(sanitizeKey(worker), "worker"), strconv.FormatInt(time.Now().UnixNano()%1e9, 36))
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: PoolBucket, Description: "scimflow worker pool membership", History: 1,
		TTL: cfg.TTL, Storage: jetstream.FileStorage, Replicas: cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("pool bucket %s: %w", PoolBucket, err)
	}
	now := time.Now().UTC()
	p := &Pool{js: js, kv: kv, cfg: cfg, log: cfg.Logger, me: Member{Name: cfg.Member, Worker: worker, Started: now, Seen: now}, rsem: make(chan struct{}, 1)}
	if err := p.renew(ctx); err != nil {
		return nil, err
	}
	if err := p.refresh(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

// Name is this worker's member name.
func (p *Pool) Name() string { return p.me.Name }

// renew writes this worker's entry: alive now, holding what holds reports.
func (p *Pool) renew(ctx context.Context) error {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	p.mu.Lock()
	holds := p.holds
	p.mu.Unlock()
	p.me.Seen = time.Now().UTC()
	p.me.Holds, p.me.Delivered = nil, nil
	if holds != nil {
		p.me.Holds, p.me.Delivered = holds()
	}
	p.me.Settled, p.me.Vanished = p.Settled(), p.Vanished()
	raw, _ := json.Marshal(p.me)
	if _, err := p.kv.Put(ctx, p.me.Name, raw); err != nil {
		p.noteFailure()
		return fmt.Errorf("announce pool member %s: %w", p.me.Name, err)
	}
	return nil
}

// Track makes every announcement of this worker name the partitions holds reports and what was
// delivered there (Member.Holds, Member.Delivered).
func (p *Pool) Track(holds func() ([]int, map[int]uint64)) {
	p.mu.Lock()
	p.holds = holds
	p.mu.Unlock()
}

// Announce writes this worker's entry now, with the partitions it holds: before it binds a
// partition (so that a worker that still runs it sees the claim) and after it handed one over (so
// that the next owner need not wait for the next heartbeat).
func (p *Pool) Announce(ctx context.Context) error { return p.renew(ctx) }

// freshMembers reads every live entry of the pool bucket (readMembers), sharing the read with
// other callers: a caller is given a read that began after it asked, never one already under way,
// so what it is told is at least as new as what was stored when it asked. Callers that ask while a
// read is under way share the next one. Every partition waiting for another worker to let go asks
// at each tick (recover), 32 listings of the bucket every 100 ms when a worker joins a pool;
// shared, they are a few. A read ended by its maker's context is not given to callers whose own
// context still runs: they read again.
func (p *Pool) freshMembers(ctx context.Context) ([]Member, error) {
	for {
		members, err := p.sharedRead(ctx)
		if err != nil && ctx.Err() == nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
			continue
		}
		return members, err
	}
}

// sharedRead is one try of freshMembers.
func (p *Pool) sharedRead(ctx context.Context) ([]Member, error) {
	p.nmu.Lock()
	if p.next == nil {
		p.next = &membersRead{}
	}
	r := p.next
	p.nmu.Unlock()

	select { // wait for a read under way to end: r begins after it
	case p.rsem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-p.rsem }()
	p.nmu.Lock()
	if r.done { // made by another caller while this one waited
		p.nmu.Unlock()
		return r.members, r.err
	}
	p.next = nil // r begins: a caller asking from now on shares the next read
	p.nmu.Unlock()
	p.reads.Add(1)
	members, deleted, err := readMembers(ctx, p.js, p.kv, p.badEntry)
	if err == nil {
		p.remember(members, deleted)
	} else {
		p.noteFailure()
	}
	if p.afterRead != nil {
		p.afterRead()
	}
	p.nmu.Lock()
	r.members, r.err, r.done = members, err, true
	p.nmu.Unlock()
	return members, err
}

// refresh reads the live members that are not leaving, and those whose entries vanished lately
// (remember): a member is not given another's partitions because the other's entry was dropped by
// a JetStream server that was down longer than the TTL, while the other still runs them.
func (p *Pool) refresh(ctx context.Context) error {
	all, err := p.freshMembers(ctx)
	if err != nil {
		return fmt.Errorf("read pool members: %w", err)
	}
	all = append(slices.Clip(all), p.vanished()...)
	var names []string
	for _, m := range all {
		if !m.Leaving {
			names = append(names, m.Name)
		}
	}
	if !slices.Contains(names, p.me.Name) && !p.leaving() {
		names = append(names, p.me.Name) // we are alive, whatever the bucket says this instant
	}
	slices.Sort(names)
	p.mu.Lock()
	p.members = names
	p.mu.Unlock()
	return nil
}

func (p *Pool) badEntry(key string, err error) {
	p.log.Warn().Err(err).Str("key", key).Str("bucket", PoolBucket).Msg("an entry of the pool bucket is not a member's: ignored")
}

func (p *Pool) leaving() bool {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	return p.me.Leaving
}

// HeldElsewhere names a live member other than this worker that holds partition n (Member.Holds),
// read from the bucket now; "" when none does. A worker runs a partition only once no other does:
// the pin on the partition's consumer and the count of events delivered elsewhere say so while
// the server remembers them, but a JetStream server restarted from an older consumer state (after
// a kill -9) has forgotten both, while the entries of this bucket, acknowledged only once stored,
// are still there. delivered is the highest stream sequence of n another live member says it was
// delivered (Member.Delivered), holding n or having let go of it lately. A member whose entry
// vanished without a delete, and that is still in the pool (remember), holds what it last said it
// held.
func (p *Pool) HeldElsewhere(ctx context.Context, n int) (holder string, delivered uint64, err error) {
	all, err := p.freshMembers(ctx)
	if err != nil {
		return "", 0, fmt.Errorf("read pool members: %w", err)
	}
	all = append(slices.Clip(all), p.vanished()...)
	for _, m := range all {
		if m.Name == p.me.Name {
			continue
		}
		delivered = max(delivered, m.Delivered[n])
		if holder == "" && slices.Contains(m.Holds, n) {
			holder = m.Name
		}
	}
	return holder, delivered, nil
}

// readMembers reads every live entry of the pool bucket, sorted by name, and the names whose
// entries were deleted (a worker that left: Pool.Leave), as opposed to expired (a worker killed, or
// a JetStream server down longer than the entries' TTL), which leaves nothing behind. An entry that
// expires while it is read is left out, and so is one that is not a member's JSON (nothing a
// worker writes): bad is told its key and what is wrong with it. The entries are listed by their
// last messages until nothing is pending (as KVKeys does), since every member rewrites its entry
// every heartbeat: a member left out is a claim not seen.
func readMembers(ctx context.Context, js jetstream.JetStream, kv jetstream.KeyValue, bad func(key string, err error)) ([]Member, map[string]bool, error) {
	live, deleted := map[string]bool{}, map[string]bool{}
	err := lastPerKey(ctx, js, PoolBucket, ">", func(key string, h nats.Header, _ *jetstream.MsgMetadata) {
		op := h.Get("KV-Operation")
		live[key] = !kvRemoved(h)
		deleted[key] = op == "DEL" || op == "PURGE"
	})
	if err != nil {
		return nil, nil, err
	}
	maps.DeleteFunc(deleted, func(_ string, d bool) bool { return !d })
	var out []Member
	for _, k := range slices.Sorted(maps.Keys(live)) {
		if !live[k] {
			continue
		}
		e, err := kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // expired or left meanwhile
		}
		if err != nil {
			return nil, nil, fmt.Errorf("member %s: %w", k, err)
		}
		var m Member
		if err := json.Unmarshal(e.Value(), &m); err != nil {
			bad(k, err)
			continue
		}
		m.Name = k
		out = append(out, m)
	}
	return out, deleted, nil
}

// Members returns the live members, sorted.
func (p *Pool) Members() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.members)
}

// Owned returns the partitions of n this worker owns under the current membership.
func (p *Pool) Owned(n int) []int {
	return Assign(p.Members(), n)[p.me.Name]
}

// Run renews the membership every heartbeat and calls changed with the partitions this worker
// owns whenever they change, until ctx is cancelled; then it leaves the pool.
func (p *Pool) Run(ctx context.Context, partitions int, changed func(owned []int)) {
	t := time.NewTicker(p.cfg.Heartbeat)
	defer t.Stop()
	var last []int
	first := true
	// Each renewal and read is bounded, so that one under way when the JetStream server went away
	// does not hold up the first renewal after it is back: the others wait for it (Settled).
	bounded := func(f func(context.Context) error) error {
		bctx, cancel := context.WithTimeout(ctx, max(2*p.cfg.Heartbeat, 2*time.Second))
		defer cancel()
		return f(bctx)
	}
	for {
		if err := bounded(p.renew); err != nil && ctx.Err() == nil {
			p.log.Warn().Err(err).Msg("renewing pool membership")
		}
		if err := bounded(p.refresh); err != nil && ctx.Err() == nil {
			p.log.Warn().Err(err).Msg("reading pool members")
		}
		owned := p.Owned(partitions)
		if first || !slices.Equal(owned, last) {
			p.log.Info().Strs("members", p.Members()).Ints("owned", owned).Msg("pool membership")
			changed(owned)
			last, first = owned, false
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Leave announces that this worker is leaving, so that the others take its partitions without
// waiting for its membership to expire; it keeps announcing what it still holds every heartbeat
// (the others run none of it meanwhile) until gone is called, which removes its entry.
func (p *Pool) Leave(ctx context.Context) (gone func()) {
	p.wmu.Lock()
	p.me.Leaving = true
	p.wmu.Unlock()
	// Each write is bounded by a heartbeat or two, and not tried while disconnected: a worker
	// leaving while NATS is unreachable must not wait on it (its entry expires anyway).
	write := func(f func(context.Context) error) error {
		if !p.js.Conn().IsConnected() {
			return nats.ErrDisconnected
		}
		wctx, cancel := context.WithTimeout(ctx, 2*p.cfg.Heartbeat)
		defer cancel()
		return f(wctx)
	}
	if err := write(p.renew); err != nil {
		p.log.Warn().Err(err).Msg("leaving the pool")
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(p.cfg.Heartbeat)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if err := write(p.renew); err != nil {
					p.log.Debug().Err(err).Msg("renewing the pool entry while leaving")
				}
			}
		}
	}()
	return func() {
		close(stop)
		<-done
		err := write(func(ctx context.Context) error { return p.kv.Delete(ctx, p.me.Name) })
		if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			p.log.Warn().Err(err).Msg("leaving the pool")
		}
	}
}

// Assign maps each partition 0..n-1 to one member: rendezvous (highest random weight) hashing
// with bounded loads. Each member ranks every partition by a hash of (member, partition); partitions
// are taken in order, each by the member that ranks it highest among those with room, so that every
// member owns ⌊n/m⌋ or ⌈n/m⌉ partitions. Every member computes the same assignment from the same
// membership, whatever its order. Plain rendezvous hashing moves nothing but the newcomer's share
// when a member joins, but its shares are uneven (with 32 partitions over 3 members the largest is
// 13.5 on average against 11, and a worker that owns more than its share is what bounds the
// pool's rate); bounded loads keep the shares even at the price of one or two more partitions
// moving between the others when the membership changes (TestAssignProperties,
// TestAssignMovesLittle).
func Assign(members []string, n int) map[string][]int {
	out := map[string][]int{}
	if len(members) == 0 || n <= 0 {
		return out
	}
	members = slices.Clone(members)
	slices.Sort(members)
	members = slices.Compact(members)
	m := len(members)
	floor, extra := n/m, n%m // extra members own floor+1
	load := make([]int, m)
	ranked := make([]int, m)
	scores := make([]uint64, m)
	for p := range n {
		for i, name := range members {
			h := fnv.New64a()
			fmt.Fprintf(h, "%s\x00%d", name, p)
			// fnv's low bits mix poorly for short inputs: finish with a 64-bit mixer.
			scores[i] = mix64(h.Sum64())
			ranked[i] = i
		}
		// Highest score first; equal scores by name (members is sorted).
		slices.SortStableFunc(ranked, func(a, b int) int { return cmp.Compare(scores[b], scores[a]) })
		for _, i := range ranked {
			if load[i] < floor || load[i] == floor && extra > 0 {
				if load[i] == floor {
					extra--
				}
				load[i]++
				out[members[i]] = append(out[members[i]], p)
				break
			}
		}
	}
	return out
}

func mix64(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

// ReadPool returns the live members of the pool bucket, leaving ones included (for `worker pool`).
func ReadPool(ctx context.Context, js jetstream.JetStream) ([]Member, error) {
	kv, err := js.KeyValue(ctx, PoolBucket)
	if err != nil {
		return nil, fmt.Errorf("pool bucket %s: %w", PoolBucket, err)
	}
	var errs []error
	out, _, err := readMembers(ctx, js, kv, func(key string, err error) {
		errs = append(errs, fmt.Errorf("pool bucket %s: entry %q is not a member's: %w", PoolBucket, key, err))
	})
	if err != nil {
		return nil, fmt.Errorf("pool bucket %s: %w", PoolBucket, err)
	}
	return out, errors.Join(errs...)
}

// sanitizeKey keeps what a KV key allows.
func sanitizeKey(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' {
			b = append(b, c)
		} else {
			b = append(b, '_')
		}
	}
	return string(b)
}
