package auth

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

func TestSecretNeverPrints(t *testing.T) {
	t.Parallel()
	const value = "hunter2-s3cr3t"
	s := Secret(value)
	type holder struct {
		Password Secret `json:"password" yaml:"password"`
	}
	outputs := map[string]string{
		"%v":     fmt.Sprintf("%v", s),
		"%s":     fmt.Sprintf("%s", s),
		"%q":     fmt.Sprintf("%q", s),
		"%x":     fmt.Sprintf("%x", s),
		"%X":     fmt.Sprintf("%X", s),
		"%d":     fmt.Sprintf("%d", s),
		"%#v":    fmt.Sprintf("%#v", s),
		"%+v":    fmt.Sprintf("%+v", holder{s}),
		"Sprint": fmt.Sprint(s),
	}
	j, err := json.Marshal(holder{s})
	require.NoError(t, err)
	outputs["json"] = string(j)
	y, err := yaml.Marshal(holder{s})
	require.NoError(t, err)
	outputs["yaml"] = string(y)
	var zl bytes.Buffer
	zl2 := zerolog.New(&zl)
	zl2.Info().Interface("cfg", holder{s}).Stringer("s", s).Msg("x")
	outputs["zerolog"] = zl.String()
	var sl bytes.Buffer
	slog.New(slog.NewJSONHandler(&sl, nil)).Info("x", "s", s)
	outputs["slog"] = sl.String()
	for name, out := range outputs {
		assert.NotContains(t, out, value, name)
		assert.NotContains(t, strings.ToLower(out), fmt.Sprintf("%x", value), name)
		assert.Contains(t, out, "***", name)
	}
	assert.Equal(t, value, s.Reveal())
	assert.Equal(t, "", Secret("").String(), "an empty secret shows as empty")
}

func TestSecretDecodes(t *testing.T) {
	t.Parallel()
	var h struct {
		Password Secret `json:"password" yaml:"password"`
	}
	require.NoError(t, json.Unmarshal([]byte(`{"password":"p\"w"}`), &h))
	assert.Equal(t, `p"w`, h.Password.Reveal())
	require.NoError(t, yaml.Unmarshal([]byte("password: from-yaml\n"), &h))
	assert.Equal(t, "from-yaml", h.Password.Reveal())
}
