package events

import (
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Subject prefixes (DESIGN.md §3).
const (
	// EventsPrefix is where publishers publish: idm.events.<object>.<keytoken>.
	EventsPrefix = "idm.events"
	// PartitionedPrefix is where the events stream stores them after its partitioning transform:
	// idm.part.<partition>.<object>.<keytoken>.
	PartitionedPrefix = "idm.part"
	// OutcomesPrefix: idm.outcomes.<object>.<status>.
	OutcomesPrefix = "idm.outcomes"
	// HistoryPrefix: idm.history.<object>.<keytoken>, the provisioning log of one key.
	HistoryPrefix = "idm.history"
	// DLQPrefix: idm.dlq.<object>.
	DLQPrefix = "idm.dlq"
	// InventoryPrefix: idm.inventory.<object>.<change>.
	InventoryPrefix = "idm.inventory"
)

// UnknownObject stands in for the object of an event whose object cannot be read.
const UnknownObject = "_unknown"

var keyTokenEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// KeyToken is the stable, NATS-safe subject token of an object key, the same for every publisher:
//
//  1. take the key's properties sorted by name;
//  2. render each value as text (strings as they are, numbers in their shortest decimal form,
//     booleans as true/false) and lower-case it, since SCIM compares userName and displayName
//     case-insensitively;
//  3. concatenate name, a NUL byte, value, a NUL byte for each property;
//  4. hash with SHA-256 and encode the first 16 bytes in lower-case base32 without padding
//     (26 characters of a-z and 2-7).
//
// Events for the same object key therefore land in the same partition whatever their order of
// fields or the case of their values.
func KeyToken(key map[string]any) string {
	names := make([]string, 0, len(key))
	for n := range key {
		names = append(names, n)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		h.Write([]byte(n))
		h.Write([]byte{0})
		h.Write([]byte(strings.ToLower(valueText(key[n]))))
		h.Write([]byte{0})
	}
	return keyTokenEncoding.EncodeToString(h.Sum(nil)[:16])
}

// KeyString renders a key for people: name=value pairs sorted by name, joined by commas.
func KeyString(key map[string]any) string {
	names := make([]string, 0, len(key))
	for n := range key {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + "=" + valueText(key[n])
	}
	return strings.Join(parts, ",")
}

func valueText(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case json.Number:
		if f, err := strconv.ParseFloat(string(v), 64); err == nil {
			return strconv.FormatFloat(f, 'f', -1, 64)
		}
		return string(v)
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case int:
		return strconv.Itoa(v)
	case int64:
		return strconv.FormatInt(v, 10)
	case bool:
		return strconv.FormatBool(v)
	case nil:
		return ""
	default:
		return fmt.Sprint(v)
	}
}

// EventSubject is the subject an event for object with key is published on.
func EventSubject(object string, key map[string]any) string {
	return EventsPrefix + "." + SubjectToken(object) + "." + KeyToken(key)
}

// OutcomeSubject is the subject of an outcome.
func OutcomeSubject(object string, status Status) string {
	return OutcomesPrefix + "." + SubjectToken(object) + "." + string(status)
}

// HistorySubject is the subject of a key's provisioning log.
func HistorySubject(object string, key map[string]any) string {
	return HistoryPrefix + "." + SubjectToken(object) + "." + KeyToken(key)
}

// DLQSubject is the subject of a dead letter.
func DLQSubject(object string) string {
	return DLQPrefix + "." + SubjectToken(object)
}

// PartitionSubject is the filter of one partition of the events stream.
func PartitionSubject(partition int) string {
	return PartitionedPrefix + "." + strconv.Itoa(partition) + ".>"
}

// SubjectToken makes s safe as one subject token: characters other than letters, digits, '-' and
// '_' become '_'; an empty result becomes UnknownObject.
func SubjectToken(s string) string {
	b := []byte(s)
	for i, c := range b {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			b[i] = '_'
		}
	}
	if len(b) == 0 {
		return UnknownObject
	}
	return string(b)
}

// ParsePartitioned reads partition, object and key token from a stored event subject
// (idm.part.<partition>.<object>.<keytoken>).
func ParsePartitioned(subject string) (partition int, object, keyToken string, err error) {
	rest, ok := strings.CutPrefix(subject, PartitionedPrefix+".")
	if !ok {
		return 0, "", "", fmt.Errorf("subject %q is not a partitioned event subject", subject)
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 3 {
		return 0, "", "", fmt.Errorf("subject %q is not a partitioned event subject", subject)
	}
	partition, err = strconv.Atoi(parts[0])
	if err != nil {
		return 0, "", "", fmt.Errorf("subject %q: partition token: %w", subject, err)
	}
	return partition, parts[1], parts[2], nil
}
