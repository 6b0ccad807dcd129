package events

import (
	"encoding/json"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestKeyToken(t *testing.T) {
	t.Parallel()
	safe := regexp.MustCompile(`^[a-z2-7]{26}$`)
	a := KeyToken(map[string]any{"userName": "JDoe@Example.com"})
	assert.Regexp(t, safe, a)
	assert.Equal(t, a, KeyToken(map[string]any{"userName": "jdoe@example.com"}), "case must not matter")
	assert.NotEqual(t, a, KeyToken(map[string]any{"userName": "jdoe2@example.com"}))
	assert.NotEqual(t, a, KeyToken(map[string]any{"displayName": "jdoe@example.com"}), "the property name is part of the key")

	two := KeyToken(map[string]any{"a": "1", "b": "2"})
	assert.Equal(t, two, KeyToken(map[string]any{"b": "2", "a": "1"}))
	assert.Equal(t, two, KeyToken(map[string]any{"a": json.Number("1"), "b": 2.0}), "numbers read as their decimal text")
	// The NUL separators keep ("ab","c") and ("a","bc") apart.
	assert.NotEqual(t, KeyToken(map[string]any{"k": "ab", "l": "c"}), KeyToken(map[string]any{"k": "a", "l": "bc"}))

	// A known vector, computed independently: sha256("userName\x00jdoe@example.com\x00")[:16] in base32.
	assert.Equal(t, knownVector(), KeyToken(map[string]any{"userName": "jdoe@example.com"}))
}

func TestSubjects(t *testing.T) {
	t.Parallel()
	key := map[string]any{"userName": "x"}
	assert.Equal(t, "idm.events.User."+KeyToken(key), EventSubject("User", key))
	assert.Equal(t, "idm.outcomes.User.succeeded", OutcomeSubject("User", StatusSucceeded))
	assert.Equal(t, "idm.dlq.Group", DLQSubject("Group"))
	assert.Equal(t, "idm.dlq._unknown", DLQSubject(""))
	assert.Equal(t, "idm.outcomes.a_b_c_.dead_lettered", OutcomeSubject("a.b*c>", StatusDeadLettered))

	p, obj, tok, err := ParsePartitioned("idm.part.7.User.abc")
	require.NoError(t, err)
	assert.Equal(t, 7, p)
	assert.Equal(t, "User", obj)
	assert.Equal(t, "abc", tok)
	_, _, _, err = ParsePartitioned("idm.events.User.abc")
	assert.Error(t, err)
	_, _, _, err = ParsePartitioned("idm.part.x.User.abc")
	assert.Error(t, err)
}

// knownVector is KeyToken({"userName": "jdoe@example.com"}) computed outside Go (Python's hashlib and
// base64), so that other publishers can check their implementation against it.
func knownVector() string { return "h6y2kfppkqb7kozphdz7cwvksm" }
