package inventory

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/scimflow/scimflow/internal/events"
)

// Changes an inventory finds against the previous snapshot.
const (
	ChangeCreated = "created"
	ChangeUpdated = "updated"
	ChangeDeleted = "deleted"
)

// Drift classes (docs/inventory.md).
const (
	// ClassExternalChange: an attribute we manage differs from what we last applied.
	ClassExternalChange = "external-change"
	// ClassUnmanaged: an object we never created nor wrote (adopted) appeared, changed or went.
	ClassUnmanaged = "unmanaged"
	// ClassMissing: an object we created or wrote is gone, and we did not delete it.
	ClassMissing = "missing"
	// ClassOurs: the change is what our own writes left: never published.
	ClassOurs = "ours"
)

// Stream of drift events.
const (
	DriftStream = "IDM_INVENTORY"
	// DriftSource is the CloudEvents source of drift events and of the reconcile events a revert
	// publishes.
	DriftSource = "/scimflow/inventory"
)

// DriftStreamConfig is the stream of drift events, idm.inventory.<object>.<change>.
func DriftStreamConfig(replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name: DriftStream, Description: "scimflow drift found by the full inventory",
		Subjects: []string{events.InventoryPrefix + ".>"}, Retention: jetstream.LimitsPolicy,
		Storage: jetstream.FileStorage, Replicas: max(replicas, 1), MaxAge: 30 * 24 * time.Hour,
		Duplicates: 2 * time.Hour,
	}
}

// DriftSubject is where drift of object goes: idm.inventory.<object>.<change>.
func DriftSubject(object, change string) string {
	return events.InventoryPrefix + "." + events.SubjectToken(object) + "." + change
}

// Drift is the data of a drift event.
type Drift struct {
	Run    uint64         `json:"run"`
	Object string         `json:"object"`
	Change string         `json:"change"`
	Class  string         `json:"class"`
	ID     string         `json:"id"`
	Key    map[string]any `json:"key"`
	// Changed names the attributes concerned: for external-change those that differ from what we
	// last applied, otherwise those that differ from the previous snapshot (every present one for
	// created).
	Changed []string `json:"changed,omitempty"`
	// Attributes are the current values of the changed attributes (nothing for deleted).
	Attributes map[string]any `json:"attributes,omitempty"`
	// LastApplied is our last write of the key, when there was one.
	LastApplied *LastApplied `json:"lastApplied,omitempty"`
	// Action is reported, or reverted when a reconcile event was published for it.
	Action string `json:"action"`
}

// LastApplied names our last write of a key.
type LastApplied struct {
	EventID   string    `json:"eventId"`
	Operation string    `json:"operation"`
	At        time.Time `json:"at"`
}

// DriftEvent is the CloudEvents envelope of a drift report.
type DriftEvent struct {
	SpecVersion     string    `json:"specversion"`
	ID              string    `json:"id"`
	Source          string    `json:"source"`
	Type            string    `json:"type"`
	Subject         string    `json:"subject"`
	Time            time.Time `json:"time"`
	DataContentType string    `json:"datacontenttype"`
	Data            Drift     `json:"data"`
}

// driftID identifies a change whatever run reports it: a run that failed after publishing is
// retried and publishes the same ids, which JetStream drops as duplicates.
func driftID(object, id, change string, hashes []uint64) string {
	h := sha256.New()
	h.Write([]byte(object + "\x00" + id + "\x00" + change + "\x00"))
	var b [8]byte
	for _, x := range hashes {
		binary.LittleEndian.PutUint64(b[:], x)
		h.Write(b[:])
	}
	return "drift-" + hex.EncodeToString(h.Sum(nil)[:16])
}

func publishDrift(ctx context.Context, js jetstream.JetStream, d Drift, hashes []uint64) (string, error) {
	ev := DriftEvent{
		SpecVersion: events.SpecVersion, ID: driftID(d.Object, d.ID, d.Change, hashes), Source: DriftSource,
		Type: "inventory." + strings.ToLower(d.Object) + "." + d.Change, Subject: d.Object + "/" + events.KeyString(d.Key),
		Time: time.Now().UTC(), DataContentType: "application/json", Data: d,
	}
	raw, err := json.Marshal(ev)
	if err != nil {
		return "", fmt.Errorf("encode drift event: %w", err)
	}
	msg := nats.NewMsg(DriftSubject(d.Object, d.Change))
	msg.Data = raw
	if _, err := js.PublishMsg(ctx, msg, jetstream.WithMsgID(ev.ID)); err != nil {
		return "", fmt.Errorf("publish drift of %s %s: %w", d.Object, d.ID, err)
	}
	return ev.ID, nil
}

// driftNote is the provisioning log's note of drift d, published as the drift event id (which the
// note shares, so that a retried run notes it once).
func driftNote(id string, d Drift, worker string) *events.HistoryNote {
	what := map[string]string{
		ChangeCreated: "appeared in the target", ChangeUpdated: "changed in the target", ChangeDeleted: "is gone from the target",
	}[d.Change]
	detail := fmt.Sprintf("%s: %s %s", d.Class, cmp.Or(what, d.Change), d.ID)
	if len(d.Changed) > 0 {
		detail += " (" + strings.Join(d.Changed, ", ") + ")"
	}
	switch d.Class {
	case ClassExternalChange:
		detail += ", not by us"
	case ClassMissing:
		detail += ", and we did not delete it"
	}
	if d.LastApplied != nil {
		detail += fmt.Sprintf("; our last write was event %s (%s) at %s", d.LastApplied.EventID, d.LastApplied.Operation, d.LastApplied.At.UTC().Format(time.RFC3339))
	}
	detail += "; " + d.Action
	if d.Action == "reverted" {
		detail += ": a reconcile event sets back what we applied"
	}
	n := &events.HistoryNote{ID: id, Kind: events.NoteDrift, Time: time.Now().UTC(), Object: d.Object, Key: d.Key,
		By: fmt.Sprintf("inventory run %d", d.Run), Worker: worker, Detail: detail}
	if d.LastApplied != nil {
		n.Event = d.LastApplied.EventID
	}
	return n
}

// classify says whose change it was. changed are the indexes of the attributes that differ from
// the previous snapshot (every one for a created object); since is when the previous snapshot's
// run started (a write of ours after it explains a change even when its answer carried no
// object). It returns the class and the attributes to report.
func classify(sh *shape, change string, observed []uint64, changed []int, rec *AppliedRecord, since time.Time) (string, []int) {
	switch {
	case rec == nil:
		return ClassUnmanaged, changed
	case change == ChangeDeleted && rec.Deleted:
		return ClassOurs, nil
	case change == ChangeDeleted:
		return ClassMissing, nil
	case rec.Deleted:
		return ClassExternalChange, changed // we deleted it, and it is there
	}
	if len(rec.States) > 0 && rec.States[0].Hashes == nil && rec.States[0].At.After(since) {
		return ClassOurs, nil
	}
	var newest map[string]uint64
	for _, st := range rec.States {
		if st.Hashes == nil {
			continue
		}
		if newest == nil {
			newest = st.Hashes
		}
		if explains(sh, st.Hashes, observed, changed) {
			return ClassOurs, nil
		}
	}
	var differ []int
	for _, i := range changed {
		if want, ok := newest[sh.props[i].Name()]; !ok || want != observed[i] {
			differ = append(differ, i)
		}
	}
	if len(differ) == 0 {
		differ = changed
	}
	return ClassExternalChange, differ
}

// explains: every changed attribute holds what the state recorded.
func explains(sh *shape, state map[string]uint64, observed []uint64, changed []int) bool {
	for _, i := range changed {
		want, ok := state[sh.props[i].Name()]
		if !ok || want != observed[i] {
			return false
		}
	}
	return true
}
