package inventory

import (
	"bytes"
	"slices"
	"strconv"

	"github.com/scimflow/scimflow/internal/jsonx"
)

// encodedSize is about how many bytes r encodes to: the capacity to encode it into at once.
func (r *AppliedRecord) encodedSize() int {
	n := 256 + 64*(len(r.Key)+len(r.Attributes))
	for _, st := range r.States {
		n += max(len(st.encoded), 64+48*len(st.Hashes))
	}
	return n
}

// appendJSON appends r as json.Marshal writes it, byte for byte (TestAppliedRecordJSONIsEncodingJSONs),
// at a fraction of the cost: the worker writes a record per event. A state is encoded once and
// kept with it, since a record carries the states of up to keptStates writes and only the newest
// is new.
func (r *AppliedRecord) appendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"object":`...)
	b = jsonx.AppendString(b, r.Object, true)
	b = append(b, `,"key":`...)
	var err error
	if b, err = jsonx.Append(b, r.Key, true); err != nil {
		return nil, err
	}
	b = append(b, `,"eventId":`...)
	b = jsonx.AppendString(b, r.EventID, true)
	if r.StreamSeq != 0 {
		b = append(b, `,"streamSeq":`...)
		b = strconv.AppendUint(b, r.StreamSeq, 10)
	}
	b = append(b, `,"operation":`...)
	b = jsonx.AppendString(b, r.Operation, true)
	b = append(b, `,"at":`...)
	if b, err = jsonx.AppendTime(b, r.At); err != nil {
		return nil, err
	}
	if r.TargetID != "" {
		b = append(b, `,"targetId":`...)
		b = jsonx.AppendString(b, r.TargetID, true)
	}
	if r.Deleted {
		b = append(b, `,"deleted":true`...)
	}
	if r.Partial {
		b = append(b, `,"partial":true`...)
	}
	if len(r.States) > 0 {
		b = append(b, `,"states":[`...)
		for i := range r.States {
			if i > 0 {
				b = append(b, ',')
			}
			st := &r.States[i]
			if st.encoded != nil {
				b = append(b, st.encoded...)
				continue
			}
			start := len(b)
			if b, err = st.appendJSON(b); err != nil {
				return nil, err
			}
			st.encoded = bytes.Clone(b[start:]) // its own bytes: a record's buffer is not kept
		}
		b = append(b, ']')
	}
	if len(r.Attributes) > 0 {
		b = append(b, `,"attributes":`...)
		if b, err = jsonx.Append(b, r.Attributes, true); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

func (s *AppliedState) appendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"eventId":`...)
	b = jsonx.AppendString(b, s.EventID, true)
	b = append(b, `,"at":`...)
	b, err := jsonx.AppendTime(b, s.At)
	if err != nil {
		return nil, err
	}
	if len(s.Hashes) > 0 {
		b = append(b, `,"hashes":{`...)
		names := s.names
		if !namesAll(names, s.Hashes) {
			names = make([]string, 0, len(s.Hashes))
			for n := range s.Hashes {
				names = append(names, n)
			}
			slices.Sort(names)
		}
		for i, n := range names {
			if i > 0 {
				b = append(b, ',')
			}
			b = jsonx.AppendString(b, n, true)
			b = append(b, ':')
			b = strconv.AppendUint(b, s.Hashes[n], 10)
		}
		b = append(b, '}')
	}
	return append(b, '}'), nil
}

// namesAll reports that names are exactly the names of hashes.
func namesAll(names []string, hashes map[string]uint64) bool {
	if len(names) != len(hashes) {
		return false
	}
	for _, n := range names {
		if _, ok := hashes[n]; !ok {
			return false
		}
	}
	return true
}
