package events

import (
	"cmp"
	"iter"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// keyScheduler runs held events key by key: every object key has a FIFO queue of the events the
// consume loop holds for it, at most one event of a key runs at a time, and a key whose head event
// waits (a reference not created yet, a deferral to the next sync window) gives its worker slot to
// other keys instead of blocking them. So one waiting key never holds back another, and the events
// of one key run in stream order whatever waits in between.
//
// Every held message, running, queued or waiting, is kept alive against AckWait by one ticker
// (keepAlive), so an event that waits behind its key is never redelivered behind its successors.
type keyScheduler struct {
	mu    sync.Mutex
	cond  *sync.Cond
	keys  map[string]*keyQueue
	ready []*keyQueue
	// readyReleases counts the keys in ready being handed back: they go first (see firstAllowed).
	readyReleases int
	held          int
	// closed: intake has stopped; workers exit when no key is left.
	closed bool
	// releasing: the loop is shutting down; a waiting key is handed back to JetStream (Nak, in
	// order) rather than kept until its wake-up time.
	releasing bool
	waiting   int
	running   int
	// gated partitions run nothing until the events delivered before this worker bound them have
	// come back (see Consumer.recover); then each of their keys' queues is put in stream order.
	gated map[int]bool
	// gateGen counts the gates of each partition, so that the recovery of an earlier bind knows
	// it is out of date.
	gateGen map[int]uint64
	// unproven partitions were opened while nobody held their pin and nothing was unacknowledged,
	// before this worker was shown to hold the pin: the previous owner may still be pulling, and
	// may still be given (and hand back) an event. The first message of the events stream
	// delivered here gates such a partition again, until it is shown to be this worker's.
	unproven map[int]bool
	// handing over: every event of these partitions is handed back once it is not running.
	handover map[int]bool
	// pausedOn is the key whose event probes the target while every other key waits (nil: not
	// paused).
	pausedOn *keyQueue
	// stopped: an operator paused provisioning; nothing runs but events being handed back.
	stopped bool
	// executing counts, per partition, the keys whose head event is being processed.
	executing map[int]int
	// delivered: partitions that a message of the events stream reached since they were gated, so
	// this worker holds their consumer's pin (JetStream delivers to the pinned client only).
	delivered map[int]bool
	// finished remembers the stream sequences of the events acknowledged lately, so that one
	// delivered again (a JetStream server restarted from a consumer state older than its last
	// acknowledgements) is acknowledged again instead of being run after its key's successors.
	finished recentSeqs
}

// recentSeqs is a set of stream sequences that forgets each one after a retention time, and its
// oldest ones beyond a size bound.
type recentSeqs struct {
	retain time.Duration
	limit  int
	at     map[uint64]time.Time
	order  []uint64 // insertion order, oldest first
}

func (r *recentSeqs) add(seq uint64, now time.Time) {
	if r.at == nil {
		r.at = map[uint64]time.Time{}
	}
	if _, ok := r.at[seq]; ok {
		return
	}
	r.at[seq] = now
	r.order = append(r.order, seq)
	n := 0
	for n < len(r.order) && (len(r.order)-n > r.limit || now.Sub(r.at[r.order[n]]) > r.retain) {
		delete(r.at, r.order[n])
		n++
	}
	// Forgotten off the front without moving the rest (append compacts when it grows): once the
	// set is full, every sequence added forgets one, and moving 2^18 others each time cost more
	// than the event.
	r.order = r.order[n:]
}

func (r *recentSeqs) has(seq uint64, now time.Time) bool {
	t, ok := r.at[seq]
	return ok && now.Sub(t) <= r.retain
}

// keyQueue is one object key's held events, head first.
type keyQueue struct {
	subject   string
	partition int
	tasks     []*task
	running   bool
	executing bool        // its head is being processed (not handed back)
	timer     *time.Timer // set while the head waits
	queued    bool        // in the ready list
	release   bool        // hand every held event back to JetStream
	gone      bool        // removed from the scheduler
}

// task is one held delivery. Its Delivery persists across the handler's resumptions.
type task struct {
	msg       jetstream.Msg
	d         *Delivery
	partition int
	// decoded once, on the first run
	decoded    bool
	ev         *Event
	decodeErr  error
	object     string
	keyToken   string
	subjectErr error
	// unpublished is a result whose outcome could not be published yet.
	unpublished *Result
	// replay is set for a parked event run again (from IDM_PARKED).
	replay *replayInfo
	// acking: the outcome is published and only the acknowledgement is left to do.
	acking bool
	// alive is when JetStream last heard of the message: its delivery, or the last InProgress.
	alive time.Time
}

// disposition is what became of a key's head task after a run.
type disposition int

const (
	done      disposition = iota // acknowledged (or left to redelivery): drop it
	wait                         // not finished: run it again at the given time
	abandoned                    // interrupted by shutdown: it was Naked; hand back the rest of the key too
	paused                       // failed for a cause outside it: run nothing else until it succeeds at the given time
)

// addResult is what add did with a delivered message.
type addResult int

const (
	added             addResult = iota
	duplicateHeld               // the scheduler holds the message already: the held copy runs
	duplicateFinished           // the message was acknowledged here lately: acknowledge it again
	duplicateParked             // the event is parked and its parked copy is held: acknowledge the message
)

// newKeyScheduler returns a scheduler that recognises a message acknowledged within retain as a
// duplicate (at most the last limit of them).
func newKeyScheduler(retain time.Duration, limit int) *keyScheduler {
	s := &keyScheduler{
		keys: map[string]*keyQueue{}, gated: map[int]bool{}, handover: map[int]bool{}, delivered: map[int]bool{},
		executing: map[int]int{}, gateGen: map[int]uint64{}, unproven: map[int]bool{},
		finished: recentSeqs{retain: retain, limit: limit},
	}
	s.cond = sync.NewCond(&s.mu)
	return s
}

// add holds a delivered message in its key's queue, in stream order behind the event running. A
// redelivery of a message the scheduler holds (same stream sequence) is ignored: the held copy runs
// in its place; one of a message acknowledged lately is reported, for the caller to acknowledge.
func (s *keyScheduler) add(t *task) addResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	seq := t.d.StreamSeq
	if t.replay == nil {
		s.delivered[t.partition] = true
		if s.unproven[t.partition] {
			// Opened before the pin was shown to be ours: run nothing more of the partition until
			// every event delivered elsewhere meanwhile is back (Consumer.recover).
			delete(s.unproven, t.partition)
			s.shut(t.partition)
		}
		if seq != 0 && s.finished.has(seq, time.Now()) {
			return duplicateFinished
		}
	}
	k := s.keys[t.d.Subject]
	if k == nil {
		k = &keyQueue{subject: t.d.Subject, partition: t.partition}
		s.keys[t.d.Subject] = k
	}
	at := len(k.tasks)
	if seq != 0 {
		for i, h := range k.tasks {
			if h.d.StreamSeq == seq {
				if h.replay != nil && t.replay == nil {
					// Delivered again after it was parked (its acknowledgement was lost): the parked
					// copy runs in its place, and this one must not come back after it.
					return duplicateParked
				}
				return duplicateHeld
			}
			if h.d.StreamSeq > seq && (i > 0 || !k.running) && at == len(k.tasks) {
				// A redelivery that came back after newer events of its key: it runs before them.
				at = i
			}
		}
	}
	if t.alive.IsZero() {
		t.alive = time.Now()
	}
	k.tasks = slices.Insert(k.tasks, at, t)
	s.held++
	if s.releasing || s.handover[k.partition] {
		s.markRelease(k)
	}
	s.schedule(k)
	return added
}

// acknowledged records that the message at stream sequence seq was acknowledged.
func (s *keyScheduler) acknowledged(seq uint64) {
	s.mu.Lock()
	s.finished.add(seq, time.Now())
	s.mu.Unlock()
}

// schedule puts k on the ready list when it has work and nothing stops it. Callers hold mu.
func (s *keyScheduler) schedule(k *keyQueue) {
	if k.gone || k.running || k.queued || len(k.tasks) == 0 {
		return
	}
	if s.gated[k.partition] && !k.release {
		return
	}
	if k.timer != nil && !k.release {
		return
	}
	if k.timer != nil {
		k.timer.Stop()
		k.timer = nil
		s.waiting--
	}
	k.queued = true
	s.ready = append(s.ready, k)
	if k.release {
		s.readyReleases++
	}
	s.cond.Signal()
}

// markRelease marks k to be handed back. Callers hold mu.
func (s *keyScheduler) markRelease(k *keyQueue) {
	if k.release {
		return
	}
	k.release = true
	if k.queued {
		s.readyReleases++
		s.cond.Signal() // a release may run while the scheduler is paused
	}
}

// next blocks until a key is ready and returns it with its head task, marking it running; ok is
// false when the scheduler is closed and empty.
func (s *keyScheduler) next() (k *keyQueue, t *task, release bool, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := -1
	for {
		if i = s.firstAllowed(); i >= 0 {
			break
		}
		if s.closed && len(s.keys) == 0 {
			return nil, nil, false, false
		}
		s.cond.Wait()
	}
	k = s.ready[i]
	if i == 0 {
		// The usual case, taken off the front without moving the rest: on a deep backlog the
		// list holds thousands of keys.
		s.ready[0] = nil
		s.ready = s.ready[1:]
	} else {
		s.ready = slices.Delete(s.ready, i, i+1)
	}
	if k.release {
		s.readyReleases--
	}
	k.queued = false
	k.running = true
	s.running++
	if !k.release {
		k.executing = true
		s.executing[k.partition]++
	}
	return k, k.tasks[0], k.release, true
}

// firstAllowed is the index of the first ready key that may run: a key being handed back first;
// then any, unless the scheduler is paused, when only the probe may. Callers hold mu.
func (s *keyScheduler) firstAllowed() int {
	// A key being handed back goes before the keys that run: handing back takes no call to the
	// target, and a partition's next owner waits for it (with every lane busy on a deep backlog,
	// a handover would otherwise wait its turn behind thousands of keys).
	if s.readyReleases > 0 {
		for i, k := range s.ready {
			if k.release {
				return i
			}
		}
	}
	for i, k := range s.ready {
		if k.release || !s.stopped && (s.pausedOn == nil || k == s.pausedOn) {
			return i
		}
	}
	return -1
}

// finish records what became of k's head task and reschedules k. It reports whether this ended
// a pause (the probe succeeded).
func (s *keyScheduler) finish(k *keyQueue, disp disposition, until time.Time) (resumed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k.running = false
	s.running--
	s.stopExecuting(k)
	if disp == paused {
		if s.pausedOn == nil {
			s.pausedOn = k
		}
		disp = wait
	} else if s.pausedOn == k {
		s.pausedOn, resumed = nil, true
		s.cond.Broadcast()
	}
	switch disp {
	case done:
		k.tasks[0] = nil
		k.tasks = k.tasks[1:]
		s.held--
	case abandoned:
		k.tasks[0] = nil
		k.tasks = k.tasks[1:]
		s.held--
		s.markRelease(k)
	case wait:
		if !k.release {
			s.waiting++
			k.timer = time.AfterFunc(time.Until(until), func() { s.wake(k) })
		}
	}
	if len(k.tasks) == 0 {
		if k.timer != nil {
			k.timer.Stop()
			k.timer = nil
			s.waiting--
		}
		k.gone = true
		delete(s.keys, k.subject)
		if s.pausedOn == k {
			s.pausedOn, resumed = nil, true
		}
		s.cond.Broadcast()
		return resumed
	}
	s.schedule(k)
	return resumed
}

// dropAll removes the running key k with every task it holds and returns them, head first, for
// the caller to hand back to JetStream in order.
func (s *keyScheduler) dropAll(k *keyQueue) (rest []*task, resumed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pausedOn == k {
		// The probe is handed back (a handover, a shutdown): another key probes next.
		s.pausedOn, resumed = nil, true
	}
	rest = k.tasks
	k.tasks = nil
	s.held -= len(rest)
	k.running = false
	s.running--
	s.stopExecuting(k)
	if k.timer != nil {
		k.timer.Stop()
		k.timer = nil
		s.waiting--
	}
	k.gone = true
	delete(s.keys, k.subject)
	s.cond.Broadcast()
	return rest, resumed
}

// stopExecuting records that k's head is no longer processed. Callers hold mu.
func (s *keyScheduler) stopExecuting(k *keyQueue) {
	if k.executing {
		k.executing = false
		s.executing[k.partition]--
	}
}

// executingIn counts the keys of partition p whose head event is being processed.
func (s *keyScheduler) executingIn(p int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.executing[p]
}

func (s *keyScheduler) wake(k *keyQueue) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k.timer == nil || k.gone {
		return
	}
	k.timer = nil
	s.waiting--
	s.schedule(k)
}

// release starts a shutdown: every waiting key, and every key that waits from now on, is handed
// back to JetStream instead of waiting.
func (s *keyScheduler) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.releasing = true
	for _, k := range s.keys {
		s.markRelease(k)
		s.schedule(k)
	}
}

// close says no more tasks will be added; workers return once every key is done.
func (s *keyScheduler) close() {
	s.mu.Lock()
	s.closed = true
	s.cond.Broadcast()
	s.mu.Unlock()
}

// staleMessages returns the held messages JetStream has heard nothing of for older or more, for
// the keep-alive, and counts them heard of now.
func (s *keyScheduler) staleMessages(now time.Time, older time.Duration) []jetstream.Msg {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []jetstream.Msg
	for _, k := range s.keys {
		for _, t := range k.tasks {
			if now.Sub(t.alive) >= older {
				out = append(out, t.msg)
				t.alive = now
			}
		}
	}
	return out
}

// prepend queues tasks at the front of a key's queue (behind its running event, if one runs), in
// order: parked events run before anything newer the key holds. A delivery of the events stream
// the key holds for one of these parked events (delivered again after it was parked) is removed
// and returned, for the caller to acknowledge: the parked copy runs in its place.
func (s *keyScheduler) prepend(subject string, partition int, tasks []*task) (superseded []*task) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.keys[subject]
	if k == nil {
		k = &keyQueue{subject: subject, partition: partition}
		s.keys[subject] = k
	}
	at := 0
	if k.running {
		at = 1
	}
	parked := map[uint64]bool{}
	for _, t := range tasks {
		parked[t.d.StreamSeq] = true
	}
	kept := k.tasks[:at]
	for _, h := range k.tasks[at:] {
		if h.replay == nil && parked[h.d.StreamSeq] {
			superseded = append(superseded, h)
			continue
		}
		kept = append(kept, h)
	}
	k.tasks = kept
	s.held -= len(superseded)
	k.tasks = slices.Insert(k.tasks, at, tasks...)
	s.held += len(tasks)
	if s.releasing || s.handover[k.partition] {
		s.markRelease(k)
	}
	s.schedule(k)
	return superseded
}

// releasePartition hands partition p over: its waiting and queued keys are handed back now, its
// running keys once their event finishes.
func (s *keyScheduler) releasePartition(p int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handover[p] = true
	delete(s.gated, p)
	delete(s.unproven, p)
	for _, k := range s.keys {
		if k.partition == p {
			s.markRelease(k)
			s.schedule(k)
		}
	}
}

// reacquire makes partition p this worker's again after a handover.
func (s *keyScheduler) reacquire(p int) {
	s.mu.Lock()
	delete(s.handover, p)
	s.mu.Unlock()
}

// markRedelivered makes every event of partition p held here up to stream sequence upTo a
// redelivery (Delivery.Redelivered).
func (s *keyScheduler) markRedelivered(p int, upTo uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for t := range s.tasksIn(p) {
		if t.d.StreamSeq <= upTo {
			t.d.Redelivered = true
		}
	}
}

// tasksIn yields every task held for partition p. Callers hold mu.
func (s *keyScheduler) tasksIn(p int) iter.Seq[*task] {
	return func(yield func(*task) bool) {
		for _, k := range s.keys {
			if k.partition != p {
				continue
			}
			for _, t := range k.tasks {
				if !yield(t) {
					return
				}
			}
		}
	}
}

// busyPartitions lists the partitions with an event held or being processed here.
func (s *keyScheduler) busyPartitions() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int
	for p, n := range s.executing {
		if n > 0 {
			out = append(out, p)
		}
	}
	for _, k := range s.keys {
		if len(k.tasks) > 0 && !slices.Contains(out, k.partition) {
			out = append(out, k.partition)
		}
	}
	slices.Sort(out)
	return out
}

// heldIn counts the events of partition p still held.
func (s *keyScheduler) heldIn(p int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, k := range s.keys {
		if k.partition == p {
			n += len(k.tasks)
		}
	}
	return n
}

// hold stops (true) or lets go again (false) every key, but those being handed back.
func (s *keyScheduler) hold(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = on
	s.cond.Broadcast()
}

// gate stops partition p from running anything until open(p), and returns the gate's generation.
func (s *keyScheduler) gate(p int) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gated[p] = true
	s.delivered[p] = false
	delete(s.unproven, p)
	s.gateGen[p]++
	return s.gateGen[p]
}

// regate gates partition p again while it runs, and returns the gate's generation: its pin moved
// (Consumer.regate). The events running finish; no other starts until open(p). ok is false when p
// is gated already, runs on trust (the next delivery gates it), or is being handed over.
func (s *keyScheduler) regate(p int) (gen uint64, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gated[p] || s.unproven[p] || s.handover[p] {
		return 0, false
	}
	s.shut(p)
	s.delivered[p] = false
	s.gateGen[p]++
	return s.gateGen[p], true
}

// shut gates partition p and takes its keys waiting for a lane off the ready list (a key being
// handed back stays). Callers hold mu.
func (s *keyScheduler) shut(p int) {
	s.gated[p] = true
	s.ready = slices.DeleteFunc(s.ready, func(k *keyQueue) bool {
		if k.partition != p || k.release {
			return false
		}
		k.queued = false
		return true
	})
}

// gateState is where the recovery of partition p stands (see keyScheduler.gateOf).
type gateState int

const (
	gateClosed   gateState = iota // p runs nothing: waiting for the events delivered elsewhere
	gateUnproven                  // p runs, but the pin is not shown to be ours: gated again on the next delivery
	gateOpen                      // p runs, the pin shown to be ours
	gateStale                     // p was bound again since, or is being handed over
)

// gateOf says where partition p stands for the recovery of gate generation gen.
func (s *keyScheduler) gateOf(p int, gen uint64) gateState {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.gateGen[p] != gen || s.handover[p]:
		return gateStale
	case s.gated[p]:
		return gateClosed
	case s.unproven[p]:
		return gateUnproven
	}
	return gateOpen
}

// open lets partition p run again, each of its keys' events in stream order.
func (s *keyScheduler) open(p int) {
	s.openAs(p, false)
}

// openUnproven lets partition p run while this worker is not shown to hold its pin: the next
// message of the events stream delivered here gates it again.
func (s *keyScheduler) openUnproven(p int) {
	s.openAs(p, true)
}

func (s *keyScheduler) openAs(p int, unproven bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.gated[p] {
		return
	}
	delete(s.gated, p)
	if unproven {
		s.unproven[p] = true
	}
	for _, k := range s.keys {
		if k.partition != p {
			continue
		}
		if !k.running {
			slices.SortStableFunc(k.tasks, func(a, b *task) int { return cmp.Compare(a.d.StreamSeq, b.d.StreamSeq) })
		}
		s.schedule(k)
	}
}

// runs says whether partition p runs its events: it is neither gated nor being handed over.
func (s *keyScheduler) runs(p int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.gated[p] && !s.handover[p]
}

// deliveredHeld counts the messages of partition p's consumer the scheduler holds (parked events
// run again are not the consumer's), and says whether one was delivered since p was gated.
func (s *keyScheduler) deliveredHeld(p int) (held int, delivered bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for t := range s.tasksIn(p) {
		if t.replay == nil {
			held++
		}
	}
	return held, s.delivered[p]
}

// schedulerStats is a snapshot of the scheduler.
type schedulerStats struct {
	Held, Keys, Waiting, Running int
}

func (s *keyScheduler) stats() schedulerStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return schedulerStats{Held: s.held, Keys: len(s.keys), Waiting: s.waiting, Running: s.running}
}
