package main

import (
	"context"
	"fmt"
	"hash/fnv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/scimflow/scimflow/internal/events"
)

// publisher publishes the workload at a steady rate: one goroutine per shard of keys, so that a
// key's events go out one at a time, in order (the next only after JetStream acknowledged the
// one before), while keys are interleaved. A publish that fails (the broker is restarting) is
// retried with the same Nats-Msg-Id until it is acknowledged, so a retry of an event that was
// stored after all is dropped as a duplicate and never reorders the key.
type publisher struct {
	js      jetstream.JetStream
	rate    float64
	shards  int
	giveUp  time.Duration
	retries atomic.Int64
	count   atomic.Int64

	mu        sync.Mutex
	published map[string]bool
	failed    error
}

func newPublisher(js jetstream.JetStream, rate float64) *publisher {
	return &publisher{js: js, rate: rate, shards: 16, giveUp: 3 * time.Minute, published: map[string]bool{}}
}

func shardOf(k *Key, n int) int {
	h := fnv.New32a()
	h.Write([]byte(k.Object + "/" + k.Name))
	return int(h.Sum32() % uint32(n))
}

// run publishes order at p.rate events per second and returns when every event is acknowledged,
// ctx ends, or an event could not be published within giveUp.
func (p *publisher) run(ctx context.Context, order []*Step) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	chans := make([]chan *Step, p.shards)
	var wg sync.WaitGroup
	for i := range chans {
		chans[i] = make(chan *Step, len(order))
		wg.Add(1)
		go func(ch <-chan *Step) {
			defer wg.Done()
			for s := range ch {
				if err := p.publish(ctx, s); err != nil {
					p.mu.Lock()
					if p.failed == nil {
						p.failed = err
					}
					p.mu.Unlock()
					cancel()
					for range ch { // drain: nothing more is published
					}
					return
				}
			}
		}(chans[i])
	}
	start := time.Now()
	for j, s := range order {
		due := start.Add(time.Duration(float64(j) / p.rate * float64(time.Second)))
		if d := time.Until(due); d > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(d):
			}
		}
		if ctx.Err() != nil {
			break
		}
		chans[shardOf(s.Key, p.shards)] <- s
	}
	for _, ch := range chans {
		close(ch)
	}
	wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failed != nil {
		return p.failed
	}
	return ctx.Err()
}

func (p *publisher) publish(ctx context.Context, s *Step) error {
	ev := s.Event()
	raw, err := ev.Encode()
	if err != nil {
		return err
	}
	subject := events.EventSubject(ev.Data.Object, ev.Data.Key)
	deadline := time.Now().Add(p.giveUp)
	for attempt := 0; ; attempt++ {
		msg := nats.NewMsg(subject)
		msg.Data = raw
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := p.js.PublishMsg(actx, msg, jetstream.WithMsgID(s.ID))
		cancel()
		if err == nil {
			p.mu.Lock()
			p.published[s.ID] = true
			p.mu.Unlock()
			p.count.Add(1)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("publish %s: not acknowledged within %s: %w", s.Label(), p.giveUp, err)
		}
		p.retries.Add(1)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(min(100*time.Millisecond<<min(attempt, 4), time.Second)):
		}
	}
}

func (p *publisher) publishedIDs() map[string]bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]bool, len(p.published))
	for k := range p.published {
		out[k] = true
	}
	return out
}
