package events

import (
	"context"

	"github.com/rs/zerolog"
)

// A log line about an event names it with three fields: "event" (its id), "object" and "key"
// (KeyString of its key). The consume loop adds them to its own lines; every other part (the
// pipeline, the connector) gets them from the context the handler runs with: a line written with
// zerolog's Event.Ctx(ctx) by a logger carrying EventLogHook names the event without the part
// knowing about events.

type eventLogKey struct{}

// WithEventLog returns ctx carrying ev for EventLogHook (ctx itself when ev is nil).
func WithEventLog(ctx context.Context, ev *Event) context.Context {
	if ev == nil {
		return ctx
	}
	return context.WithValue(ctx, eventLogKey{}, ev)
}

// EventLogHook adds the id, object and key of the event a line's context carries (see
// WithEventLog) to the line. cmd/worker sets it on its root logger.
var EventLogHook zerolog.Hook = zerolog.HookFunc(func(e *zerolog.Event, _ zerolog.Level, _ string) {
	if ev, ok := e.GetCtx().Value(eventLogKey{}).(*Event); ok {
		LogEvent(e, ev)
	}
})

// LogEvent adds ev's id, object and key to a log line.
func LogEvent(e *zerolog.Event, ev *Event) *zerolog.Event {
	if !e.Enabled() || ev == nil {
		return e
	}
	return e.Str("event", ev.ID).Str("object", ev.Data.Object).Str("key", KeyString(ev.Data.Key))
}

// logTask adds the id, object and key of t's event to a log line about it. An event not decoded
// yet (a duplicate delivery dropped on arrival) is decoded for the line, only when the line is
// logged; one that does not decode is named by its message id and its subject's object and key
// token.
func logTask(e *zerolog.Event, t *task) *zerolog.Event {
	if !e.Enabled() {
		return e
	}
	ev := t.ev
	if ev == nil && !t.decoded {
		ev, _ = Decode(t.msg.Data())
	}
	if ev != nil {
		return LogEvent(e, ev)
	}
	_, object, keyToken, _ := ParsePartitioned(t.d.Subject)
	return e.Str("event", t.msg.Headers().Get(HeaderMsgID)).Str("object", object).Str("keytoken", keyToken)
}

// logKey adds the object and key of a parked key to a log line about it.
func logKey(e *zerolog.Event, st KeyState) *zerolog.Event {
	if !e.Enabled() {
		return e
	}
	if st.Object == "" {
		_, object, keyToken, _ := ParsePartitioned(st.Subject)
		return e.Str("object", object).Str("keytoken", keyToken)
	}
	return e.Str("object", st.Object).Str("key", KeyString(st.Key))
}
