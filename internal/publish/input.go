// Package publish reads identity events from files (JSONL or CSV), publishes them to the events
// stream, waits for their outcomes and summarises them. The publisher binary and the worker's demo
// both use it.
package publish

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/scimflow/scimflow/internal/events"
)

// Item is one event to publish, as read from a file.
type Item struct {
	// Line is the 1-based line (JSONL) or record (CSV) number.
	Line int
	// Batch counts the "#wait" lines before this item: with --wait, a batch is published only when
	// every event of the batches before it has its outcome.
	Batch int
	// ID is the event id, used as Nats-Msg-Id; derived from the line when the event has none.
	ID string
	// Subject is where the event is published.
	Subject string
	// Raw is the event exactly as it will be published.
	Raw []byte
	// Object and Key are as far as they could be read, for the summary.
	Object string
	Key    map[string]any
	// Invalid says why the event fails validation; the worker would dead-letter it.
	Invalid error
	// NotJSON says the line is not JSON at all (a wrong file, a YAML line): Invalid is set too.
	NotJSON bool
}

// Problem says in one line what is wrong with an invalid item: for a line that is not JSON, its
// beginning; otherwise the validation error. It is "" for a valid item.
func (it Item) Problem() string {
	switch {
	case it.Invalid == nil:
		return ""
	case it.NotJSON:
		start := string(it.Raw)
		if r := []rune(start); len(r) > 60 {
			start = string(r[:59]) + "…"
		}
		return "not JSON: " + strconv.Quote(start)
	default:
		return oneLine(it.Invalid.Error(), 0)
	}
}

// waitLine marks a barrier in a JSONL file: "#wait", optionally followed by a note.
var waitLine = regexp.MustCompile(`^#\s*wait\b`)

// ReadJSONL reads one event per non-blank line; lines starting with # are comments, and a "#wait"
// comment starts a new batch (see Item.Batch). An event that fails validation is still returned,
// with Invalid set and a best-effort subject, so that the caller decides whether to publish it
// (the worker dead-letters it with its reason) or to stop.
func ReadJSONL(r io.Reader) ([]Item, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 8<<20)
	var items []Item
	line, batch := 0, 0
	for sc.Scan() {
		line++
		raw := bytes.TrimSpace(sc.Bytes())
		if len(raw) > 0 && raw[0] == '#' && waitLine.Match(raw) {
			batch++
			continue
		}
		if len(raw) == 0 || raw[0] == '#' {
			continue
		}
		it := itemFor(line, append([]byte(nil), raw...))
		it.Batch = batch
		items = append(items, it)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w", line+1, err)
	}
	return items, nil
}

func itemFor(line int, raw []byte) Item {
	it := Item{Line: line, Raw: raw}
	ev, err := events.Decode(raw)
	if err == nil {
		it.ID, it.Object, it.Key = ev.ID, ev.Data.Object, ev.Data.Key
		it.Subject = events.EventSubject(ev.Data.Object, ev.Data.Key)
		return it
	}
	it.Invalid = err
	it.NotJSON = !json.Valid(raw)
	// Best effort: publish where the worker of that object and key would see it.
	var loose struct {
		ID   any `json:"id"`
		Data struct {
			Object any            `json:"object"`
			Key    map[string]any `json:"key"`
		} `json:"data"`
	}
	_ = json.Unmarshal(raw, &loose)
	sum := sha256.Sum256(raw)
	if id, ok := loose.ID.(string); ok && id != "" {
		it.ID = id
	} else {
		it.ID = "line-" + strconv.Itoa(line) + "-" + hex.EncodeToString(sum[:6])
	}
	object, _ := loose.Data.Object.(string)
	it.Object = events.SubjectToken(object)
	it.Key = loose.Data.Key
	if len(it.Key) == 0 {
		it.Subject = events.EventsPrefix + "." + it.Object + "." + events.KeyToken(map[string]any{"_raw": hex.EncodeToString(sum[:])})
	} else {
		it.Subject = events.EventsPrefix + "." + it.Object + "." + events.KeyToken(it.Key)
	}
	return it
}

// CSVOptions say how CSV records become events.
type CSVOptions struct {
	Object    string   // data model object, e.g. User
	Operation string   // e.g. Upsert
	Key       []string // columns holding the key properties
	Source    string   // CloudEvents source, default /publisher/csv
	// Multi lists columns holding several values separated by Sep (default "|"), sent as arrays.
	Multi []string
	Sep   string
	// IDPrefix prefixes generated event ids; the id also holds a hash of the record so that
	// publishing the same file twice is deduplicated by JetStream.
	IDPrefix string
}

// ReadCSV reads a CSV file with a header row; each record becomes one event whose key is taken from
// the key columns and whose attributes are the other non-empty columns (column name = property
// name). Empty cells are left out. Values "true"/"false" become booleans.
func ReadCSV(r io.Reader, opt CSVOptions) ([]Item, error) {
	if opt.Object == "" || opt.Operation == "" || len(opt.Key) == 0 {
		return nil, errors.New("csv: object, operation and at least one key column are required")
	}
	sep := opt.Sep
	if sep == "" {
		sep = "|"
	}
	multi := map[string]bool{}
	for _, m := range opt.Multi {
		multi[m] = true
	}
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = 0
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("csv: header: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.TrimSpace(h)] = i
	}
	for _, k := range opt.Key {
		if _, ok := col[k]; !ok {
			return nil, fmt.Errorf("csv: key column %q is not in the header %v", k, header)
		}
	}
	isKey := map[string]bool{}
	for _, k := range opt.Key {
		isKey[k] = true
	}
	var items []Item
	for rec := 2; ; rec++ {
		row, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("csv: record %d: %w", rec, err)
		}
		change := events.Change{Object: opt.Object, Operation: opt.Operation, Key: map[string]any{}, Attributes: map[string]any{}}
		for name, i := range col {
			v := strings.TrimSpace(row[i])
			if isKey[name] {
				change.Key[name] = v
				continue
			}
			if v == "" {
				continue
			}
			change.Attributes[name] = cellValue(v, multi[name], sep)
		}
		body, _ := json.Marshal(change)
		sum := sha256.Sum256(body)
		id := opt.IDPrefix + opt.Object + "-" + hex.EncodeToString(sum[:10])
		source := opt.Source
		if source == "" {
			source = "/publisher/csv"
		}
		ev := events.NewEvent(id, source, change)
		raw, err := ev.Encode()
		if err != nil {
			return nil, fmt.Errorf("csv: record %d: %w", rec, err)
		}
		items = append(items, itemFor(rec, raw))
	}
	return items, nil
}

func cellValue(v string, multi bool, sep string) any {
	if multi {
		parts := strings.Split(v, sep)
		out := make([]any, 0, len(parts))
		for _, p := range parts {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
		return out
	}
	switch v {
	case "true":
		return true
	case "false":
		return false
	}
	return v
}
