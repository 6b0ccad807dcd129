package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/scimflow/scimflow/internal/cyberarksim"
	"github.com/scimflow/scimflow/internal/events"
)

// readOutcomes reads the whole outcome stream with an ordered consumer, up to the last message
// stored when it starts.
func readOutcomes(ctx context.Context, js jetstream.JetStream) ([]*events.Outcome, error) {
	st, err := js.Stream(ctx, events.OutcomesStream)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", events.OutcomesStream, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, err
	}
	last := info.State.LastSeq
	if info.State.Msgs == 0 {
		return nil, nil
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		return nil, err
	}
	var out []*events.Outcome
	for {
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return out, err
		}
		n := 0
		for msg := range batch.Messages() {
			n++
			md, err := msg.Metadata()
			if err != nil {
				return out, err
			}
			o, err := events.DecodeOutcome(msg.Data())
			if err != nil {
				return out, fmt.Errorf("outcome at stream sequence %d does not decode: %w", md.Sequence.Stream, err)
			}
			out = append(out, o)
			if md.Sequence.Stream >= last {
				return out, nil
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return out, err
		}
		if n == 0 {
			return out, fmt.Errorf("the outcome stream stopped at %d outcomes, before its last sequence %d", len(out), last)
		}
	}
}

// outcomeCounts counts the outcomes stored per status from the stream's subjects (cheap: no
// message is read).
func outcomeCounts(ctx context.Context, js jetstream.JetStream) (map[events.Status]int, error) {
	st, err := js.Stream(ctx, events.OutcomesStream)
	if err != nil {
		return nil, err
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(events.OutcomesPrefix+".>"))
	if err != nil {
		return nil, err
	}
	out := map[events.Status]int{}
	for subj, n := range info.State.Subjects {
		i := strings.LastIndexByte(subj, '.')
		out[events.Status(subj[i+1:])] += int(n)
	}
	return out, nil
}

// streamMsgs is how many messages the stream holds.
func streamMsgs(ctx context.Context, js jetstream.JetStream, name string) (int64, error) {
	st, err := js.Stream(ctx, name)
	if err != nil {
		return -1, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return -1, err
	}
	return int64(info.State.Msgs), nil
}

// sim talks to the simulator's admin API.
type sim struct{ base string }

func (s sim) getJSON(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, body)
	}
	return json.Unmarshal(body, v)
}

// writes reads the write log after since; missed says writes were dropped before they were read.
func (s sim) writes(ctx context.Context, since uint64) (ws []cyberarksim.Write, last uint64, missed bool, err error) {
	for {
		var p cyberarksim.WritePage
		if err := s.getJSON(ctx, "/admin/writes?since="+strconv.FormatUint(since, 10), &p); err != nil {
			return ws, since, missed, err
		}
		if p.Oldest > since+1 {
			missed = true
		}
		ws = append(ws, p.Writes...)
		if len(p.Writes) == 0 || p.Next >= p.Last {
			return ws, p.Next, missed, nil
		}
		since = p.Next
	}
}

func (s sim) state(ctx context.Context) ([]SimUser, []SimGroup, error) {
	var st struct {
		Users  []SimUser  `json:"Users"`
		Groups []SimGroup `json:"Groups"`
	}
	err := s.getJSON(ctx, "/admin/state", &st)
	return st.Users, st.Groups, err
}

func (s sim) setFaults(ctx context.Context, f cyberarksim.Faults) error {
	body, err := json.Marshal(f)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, s.base+"/admin/faults", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("PUT /admin/faults: %s: %s", resp.Status, msg)
	}
	return nil
}

func (s sim) stats(ctx context.Context) (cyberarksim.Stats, error) {
	var st cyberarksim.Stats
	err := s.getJSON(ctx, "/admin/stats", &st)
	return st, err
}
