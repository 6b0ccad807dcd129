package main

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/scimflow/scimflow/internal/events"
)

// item is one event of a workload, encoded.
type item struct {
	id, subject string
	raw         []byte
	kind        string // "create", "update", "add", "group"
}

// mixed is the overhead workload of issue 10: per user a Create, two Updates and one
// AddAssignment to one of the groups (created first), so about 1 create : 1 membership add :
// 2 updates. Every event that depends on another (a user's updates on its create, a membership
// on its member's create) is published at least `gap` events after it, so that both consumers
// rarely wait for a reference; each key's events are in order.
func mixed(prefix string, users, groups int) ([]item, error) {
	var out []item
	add := func(kind, id string, ch events.Change) error {
		ev := events.NewEvent(id, "/bench", ch)
		raw, err := ev.Encode()
		if err != nil {
			return fmt.Errorf("encode %s: %w", id, err)
		}
		out = append(out, item{id: id, subject: events.EventSubject(ch.Object, ch.Key), raw: raw, kind: kind})
		return nil
	}
	userName := func(u int) string { return fmt.Sprintf("%s-u%06d@example.com", prefix, u) }
	groupName := func(g int) string { return fmt.Sprintf("%s-g%04d", prefix, g) }
	for g := range groups {
		if err := add("group", fmt.Sprintf("%s-g%04d-create", prefix, g), events.Change{Object: "Group", Operation: events.OpCreate,
			Key: map[string]any{"displayName": groupName(g)}}); err != nil {
			return nil, err
		}
	}
	const gap = 200
	// Stage s of user u is published at step u + s*gap: create, update, add, update.
	for step := 0; step < users+3*gap; step++ {
		if u := step; u < users {
			if err := add("create", fmt.Sprintf("%s-u%06d-1", prefix, u), events.Change{Object: "User", Operation: events.OpCreate,
				Key: map[string]any{"userName": userName(u)},
				Attributes: map[string]any{"name.givenName": "Bench", "name.familyName": fmt.Sprintf("User %d", u), "title": "v1",
					"emails[].value": []any{userName(u)}, "active": true}}); err != nil {
				return nil, err
			}
		}
		if u := step - gap; u >= 0 && u < users {
			if err := add("update", fmt.Sprintf("%s-u%06d-2", prefix, u), events.Change{Object: "User", Operation: events.OpUpdate,
				Key: map[string]any{"userName": userName(u)}, Attributes: map[string]any{"title": "v2"}}); err != nil {
				return nil, err
			}
		}
		if u := step - 2*gap; u >= 0 && u < users && groups > 0 {
			if err := add("add", fmt.Sprintf("%s-u%06d-add", prefix, u), events.Change{Object: "Group", Operation: events.OpAddAssignment,
				Key: map[string]any{"displayName": groupName(u % groups)}, Attributes: map[string]any{"members[].value": []any{userName(u)}}}); err != nil {
				return nil, err
			}
		}
		if u := step - 3*gap; u >= 0 && u < users {
			if err := add("update", fmt.Sprintf("%s-u%06d-3", prefix, u), events.Change{Object: "User", Operation: events.OpUpdate,
				Key: map[string]any{"userName": userName(u)}, Attributes: map[string]any{"title": "v3"}}); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// creates is n user creates (the latency and scale-out workload).
func creates(prefix string, n int) ([]item, error) {
	out := make([]item, 0, n)
	for u := range n {
		name := fmt.Sprintf("%s-u%06d@example.com", prefix, u)
		ch := events.Change{Object: "User", Operation: events.OpCreate, Key: map[string]any{"userName": name},
			Attributes: map[string]any{"name.givenName": "Bench", "name.familyName": fmt.Sprintf("User %d", u), "title": "v1",
				"emails[].value": []any{name}, "active": true}}
		id := fmt.Sprintf("%s-u%06d-1", prefix, u)
		raw, err := events.NewEvent(id, "/bench", ch).Encode()
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", id, err)
		}
		out = append(out, item{id: id, subject: events.EventSubject(ch.Object, ch.Key), raw: raw, kind: "create"})
	}
	return out, nil
}

// prefill publishes items as fast as JetStream acknowledges them (async, a window of 2,000), with
// their ids as Nats-Msg-Id, and returns when every one is acknowledged.
func prefill(ctx context.Context, js jetstream.JetStream, items []item) error {
	futures := make([]jetstream.PubAckFuture, 0, len(items))
	for _, it := range items {
		msg := nats.NewMsg(it.subject)
		msg.Data = it.raw
		f, err := js.PublishMsgAsync(msg, jetstream.WithMsgID(it.id), jetstream.WithStallWait(time.Minute))
		if err != nil {
			return fmt.Errorf("publish %s: %w", it.id, err)
		}
		futures = append(futures, f)
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(5 * time.Minute):
		return fmt.Errorf("publishing %d events: not acknowledged within 5 minutes", len(items))
	}
	for i, f := range futures {
		select {
		case err := <-f.Err():
			return fmt.Errorf("publish %s: %w", items[i].id, err)
		default:
		}
	}
	return nil
}
