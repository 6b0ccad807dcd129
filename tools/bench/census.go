package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// censusResult counts the messages a consumer's drain sends to the JetStream server, by what they
// are, per event.
type censusResult struct {
	kind    string
	n       int
	classes map[string]float64 // per event
	inMsgs  float64            // /varz in_msgs per event over the same drain, for comparison
}

// census drains a quarter of the mixed workload while a wildcard subscription sees every message
// clients publish, and classifies them by subject. It is a round of its own: the subscription
// doubles the server's deliveries, so its figures of time and CPU are not used.
func (h *harness) census(ctx context.Context, kind string) (censusResult, error) {
	items, err := mixed("census", max(h.opt.users/4, 1), h.opt.groups)
	if err != nil {
		return censusResult{}, err
	}
	name := "census-" + strings.ReplaceAll(kind, " ", "")
	e, err := h.newEnv(ctx, name, nil)
	if err != nil {
		return censusResult{}, err
	}
	defer e.close()
	if err := prefill(ctx, e.js, items); err != nil {
		return censusResult{}, err
	}
	m, err := newMonitor(e.nc)
	if err != nil {
		return censusResult{}, err
	}
	defer m.close()
	var mu sync.Mutex
	counts := map[string]int{}
	counting := false
	sub, err := e.nc.Subscribe(">", func(msg *nats.Msg) {
		c := classify(msg.Subject, msg.Reply, msg.Data)
		mu.Lock()
		if counting && c != "" {
			counts[c]++
		}
		mu.Unlock()
	})
	if err != nil {
		return censusResult{}, fmt.Errorf("census subscription: %w", err)
	}
	defer sub.Unsubscribe()
	_ = sub.SetPendingLimits(-1, -1)
	if err := e.nc.Flush(); err != nil {
		return censusResult{}, err
	}
	mu.Lock()
	counting = true
	mu.Unlock()
	v0, err := e.varz(ctx)
	if err != nil {
		return censusResult{}, err
	}
	if err := e.startConsumer(ctx, kind, 1); err != nil {
		return censusResult{}, err
	}
	if _, err := e.waitDrain(ctx, m, len(items), 60*time.Second); err != nil {
		return censusResult{}, fmt.Errorf("%s: %w", name, err)
	}
	// Let the last acks arrive.
	time.Sleep(200 * time.Millisecond)
	_ = e.nc.Flush()
	v1, err := e.varz(ctx)
	if err != nil {
		return censusResult{}, err
	}
	mu.Lock()
	counting = false
	res := censusResult{kind: kind, n: len(items), classes: map[string]float64{}, inMsgs: float64(v1.InMsgs-v0.InMsgs) / float64(len(items))}
	for c, n := range counts {
		res.classes[c] = float64(n) / float64(len(items))
	}
	mu.Unlock()
	h.logf("%-28s %6d events  %s", name, len(items), res.summary())
	return res, nil
}

// summary lists the classes, most frequent first.
func (c censusResult) summary() string {
	type kv struct {
		k string
		v float64
	}
	var all []kv
	total := 0.0
	for k, v := range c.classes {
		all = append(all, kv{k, v})
		total += v
	}
	sort.Slice(all, func(i, j int) bool { return all[i].v > all[j].v || all[i].v == all[j].v && all[i].k < all[j].k })
	parts := []string{fmt.Sprintf("%.2f in all", total)}
	for _, x := range all {
		parts = append(parts, fmt.Sprintf("%s %.2f", x.k, x.v))
	}
	return strings.Join(parts, ", ")
}

// classify names what a message seen by the census is; "" for what the server sends to clients:
// replies, and consumer deliveries (which keep the stored message's subject, with an ack reply
// subject).
func classify(subject, reply string, data []byte) string {
	switch {
	case strings.HasPrefix(reply, "$JS.ACK."), strings.HasPrefix(subject, "_INBOX."), strings.HasPrefix(subject, "$SYS."), strings.HasPrefix(subject, "$JS.EVENT."):
		return ""
	case strings.HasPrefix(subject, "$JS.ACK."):
		body := string(data)
		switch {
		case body == "" || body == "+ACK":
			return "ack"
		case strings.HasPrefix(body, "+WPI"):
			return "ack in progress (+WPI)"
		case strings.HasPrefix(body, "-NAK"):
			return "nak"
		case strings.HasPrefix(body, "+TERM"):
			return "term"
		case strings.HasPrefix(body, "+NXT"):
			return "ack next"
		}
		return "ack " + clip(body, 8)
	case strings.HasPrefix(subject, "$JS.API.CONSUMER.MSG.NEXT."):
		return "pull request"
	case strings.HasPrefix(subject, "$JS.API.DIRECT.GET."):
		return "direct get (KV read) " + token(subject, 4)
	case strings.HasPrefix(subject, "$JS.API."):
		t := strings.Split(subject, ".")
		if len(t) >= 4 {
			return "JetStream API " + t[2] + "." + t[3]
		}
		return "JetStream API"
	case strings.HasPrefix(subject, "$KV."):
		return "KV write " + token(subject, 1)
	case strings.HasPrefix(subject, "$O."):
		return "object store " + token(subject, 1)
	case strings.HasPrefix(subject, "idm.events."):
		return "event publish"
	case strings.HasPrefix(subject, "idm."):
		return "publish " + token(subject, 0) + "." + token(subject, 1)
	}
	return "other " + token(subject, 0)
}

// token is the i-th dot-separated token of subject ("" when there is none).
func token(subject string, i int) string {
	t := strings.Split(subject, ".")
	if i < len(t) {
		return t[i]
	}
	return ""
}
