package events

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Decode reads an event from the document its schema check parsed: the result must be exactly
// what encoding/json makes of the same text, for every sample event.
func TestDecodeReadsWhatEncodingJSONReads(t *testing.T) {
	f, err := os.Open("../../deploy/examples/events.jsonl")
	require.NoError(t, err)
	defer f.Close()
	lines := [][]byte{
		[]byte(`{"specversion":"1.0","id":"x-1","source":"/hr","type":"identity.user.update","time":"2026-11-23T09:12:00.123456789+01:00","subject":"s","datacontenttype":"application/json","extra":1,
			"data":{"object":"User","operation":"Update","key":{"userName":"a@x","n":12},"attributes":{"title":"CTO","age":42.5,"tags":["a","b"],"manager":{"value":"b@x"},"none":null},"actions":{"tags":"add"}}}`),
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if l := bytes.TrimSpace(sc.Bytes()); len(l) > 0 && l[0] == '{' {
			lines = append(lines, append([]byte(nil), l...))
		}
	}
	checked := 0
	for _, l := range lines {
		got, err := Decode(l)
		if err != nil {
			continue // the sample's malformed event
		}
		var want Event
		dec := json.NewDecoder(bytes.NewReader(l))
		dec.UseNumber()
		require.NoError(t, dec.Decode(&want))
		assert.Equal(t, &want, got, "%s", l)
		checked++
	}
	assert.Greater(t, checked, 20)
}
