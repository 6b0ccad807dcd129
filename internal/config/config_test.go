package config

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/scimflow/scimflow/internal/auth"
	"github.com/scimflow/scimflow/internal/provision"
	"github.com/scimflow/scimflow/internal/yamlschema"
)

const minimal = `target:
  profile: cyberark
  baseURI: https://tenant.id.cyberark.cloud/scim/v2
  auth:
    mode: oauth2
    oauth2:
      tokenURL: https://tenant.id.cyberark.cloud/oauth2/token/scimflow
      clientID: ${CLIENT_ID}
      clientSecret: ${CLIENT_SECRET}
      scopes: [scim]
model: model.yaml
`

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

var secrets = env(map[string]string{"CLIENT_ID": "cid", "CLIENT_SECRET": "s3cret"})

// write puts a config and an (empty) model file in a fresh folder.
func write(t *testing.T, text string) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "model.yaml"), []byte("objects: []\n"), 0o600))
	file := filepath.Join(dir, "scimflow.yaml")
	require.NoError(t, os.WriteFile(file, []byte(text), 0o600))
	return file
}

func TestLoadDefaults(t *testing.T) {
	t.Parallel()
	file := write(t, minimal)
	c, err := Load(file, Options{LookupEnv: secrets})
	require.NoError(t, err)
	dir := filepath.Dir(file)
	assert.True(t, c.NATS.Embedded())
	assert.Equal(t, "127.0.0.1:4222", c.NATS.Listen)
	assert.Equal(t, "nats://127.0.0.1:4222", c.NATS.ClientURL())
	assert.Equal(t, filepath.Join(dir, "data/nats"), c.NATS.StoreDir, "relative to the config file")
	assert.Equal(t, "always", c.NATS.SyncInterval)
	assert.Zero(t, c.NATS.SyncEvery())
	assert.Equal(t, 32, c.NATS.Partitions)
	assert.Equal(t, filepath.Join(dir, "model.yaml"), c.Model)
	assert.Equal(t, "@every 15m", c.SyncWindow.Schedule)
	assert.Equal(t, 3, c.SyncWindow.MaxWindows)
	assert.Equal(t, 256, c.Worker.Lanes)
	assert.Equal(t, provision.ProfileCyberArk, c.Target.Profile)
	assert.Equal(t, auth.ModeOAuth2, c.Target.Auth.Mode)
	assert.Equal(t, "cid", c.Target.Auth.OAuth2.ClientID)
	assert.Equal(t, "s3cret", c.Target.Auth.OAuth2.ClientSecret.Reveal())
	assert.Equal(t, []string{"scim"}, c.Target.Auth.OAuth2.Scopes)
	sch, err := c.SyncWindow.Parsed()
	require.NoError(t, err)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	assert.Equal(t, now.Add(15*time.Minute), sch.Next(now))
}

func TestLoadEverySection(t *testing.T) {
	t.Parallel()
	text := minimal + `nats:
  url: nats://a:4222,nats://b:4222
  user: w
  password: ${NATS_PASSWORD}
  partitions: 16
  replicas: 3
  syncInterval: 10s
  duplicateWindow: 2h
syncWindow:
  schedule: "0 */2 * * *"
  maxWindows: 5
worker:
  lanes: 8
  partitions: [0, 1, 15]
  ackWait: 5m
http:
  listen: ":9100"
log:
  level: debug
  format: console
`
	text = strings.Replace(text, "  profile: cyberark\n", `  profile: cyberark
  timeout: 10s
  tls:
    minVersion: "1.3"
    caFile: ca.pem
  breaker:
    consecutiveFailures: 5
    openTimeout: 1m
  concurrency:
    max: 20
    latencyFloor: 3ms
  retry:
    attempts: 2
`, 1)
	file := write(t, text)
	c, err := Load(file, Options{LookupEnv: env(map[string]string{"CLIENT_ID": "cid", "CLIENT_SECRET": "x", "NATS_PASSWORD": "np"})})
	require.NoError(t, err)
	assert.False(t, c.NATS.Embedded())
	assert.Equal(t, "np", c.NATS.Password.Reveal())
	assert.Equal(t, 10*time.Second, c.NATS.SyncEvery())
	assert.Equal(t, 2*time.Hour, c.NATS.DuplicateWindow)
	assert.Equal(t, []int{0, 1, 15}, c.Worker.Partitions)
	assert.Equal(t, 5*time.Minute, c.Worker.AckWait)
	assert.Equal(t, 10*time.Second, c.Target.Timeout)
	assert.Equal(t, "1.3", c.Target.TLS.MinVersion)
	assert.Equal(t, filepath.Join(filepath.Dir(file), "ca.pem"), c.Target.TLS.CAFile)
	assert.EqualValues(t, 5, c.Target.Breaker.ConsecutiveFailures)
	assert.Equal(t, time.Minute, c.Target.Breaker.OpenTimeout)
	assert.Equal(t, 20, c.Target.Concurrency.Max)
	assert.Equal(t, 3*time.Millisecond, c.Target.Concurrency.LatencyFloor)
	assert.Equal(t, 2, c.Target.Retry.Attempts)
	assert.Len(t, c.NATS.ClientOptions(), 1)
}

// problems loads text and returns the problems as "line: field: message" strings.
func problems(t *testing.T, text string, lookup func(string) (string, bool)) []string {
	t.Helper()
	_, err := Load(write(t, text), Options{LookupEnv: lookup})
	require.Error(t, err)
	var ye *yamlschema.Error
	require.True(t, errors.As(err, &ye), "%T: %v", err, err)
	var out []string
	for _, p := range ye.Problems {
		assert.Equal(t, "scimflow.yaml", filepath.Base(p.File))
		out = append(out, strings.TrimPrefix(p.String(), p.File+":"))
	}
	return out
}

func TestLoadErrorsNameLineAndField(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		edit   func(string) string
		lookup func(string) (string, bool)
		want   string
	}{
		{"unknown key", func(s string) string { return s + "workers: 3\n" }, secrets, "12: workers: unknown field"},
		{"unknown auth mode", func(s string) string { return strings.Replace(s, "mode: oauth2", "mode: kerberos", 1) }, secrets,
			`5: target.auth.mode: must be one of none,basic,bearer,oauth2 (got "kerberos")`},
		{"unset env", func(s string) string { return s }, env(map[string]string{"CLIENT_ID": "x"}),
			"9: target.auth.oauth2.clientSecret: environment variable CLIENT_SECRET is not set"},
		{"TLS below 1.2", func(s string) string {
			return strings.Replace(s, "  profile: cyberark\n", "  profile: cyberark\n  tls:\n    minVersion: \"1.1\"\n", 1)
		}, secrets, "4: target.tls.minVersion: \"1.1\" is refused: TLS below 1.2 is deprecated"},
		{"missing token URL", func(s string) string {
			return strings.Replace(s, "      tokenURL: https://tenant.id.cyberark.cloud/oauth2/token/scimflow\n", "", 1)
		}, secrets, "6: target.auth.oauth2.tokenURL: required with mode oauth2"},
		{"bad duration", func(s string) string { return s + "worker:\n  ackWait: soon\n" }, secrets, `13: worker.ackWait: "soon" does not match`},
		{"bad schedule", func(s string) string { return s + "syncWindow:\n  schedule: every tuesday\n" }, secrets, "13: syncWindow.schedule: \"every tuesday\""},
		{"partition out of range", func(s string) string { return s + "worker:\n  partitions: [40]\n" }, secrets,
			"13: worker.partitions[0]: 40 is not a partition of 0..31"},
		{"missing model file", func(s string) string { return strings.Replace(s, "model: model.yaml", "model: nope.yaml", 1) }, secrets,
			"11: model: stat"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := problems(t, tc.edit(minimal), tc.lookup)
			found := false
			for _, p := range got {
				if strings.HasPrefix(p, tc.want) {
					found = true
				}
			}
			assert.True(t, found, "want a problem starting %q, got %q", tc.want, got)
		})
	}
}

func TestSecretsNeverPrint(t *testing.T) {
	t.Parallel()
	c, err := Load(write(t, minimal), Options{LookupEnv: secrets})
	require.NoError(t, err)
	for _, s := range []string{
		strings.Join([]string{c.Target.Auth.OAuth2.ClientSecret.String()}, ""),
		strings.TrimSpace(fmtAll(c)),
	} {
		assert.NotContains(t, s, "s3cret")
	}
}

func fmtAll(c *Config) string {
	return strings.ReplaceAll(strings.ReplaceAll(sprint(c), "\n", " "), "\t", " ")
}

func TestLoadNATSIgnoresTargetSecrets(t *testing.T) {
	t.Parallel()
	file := write(t, minimal+"nats:\n  url: nats://n:4222\n  token: ${NATS_TOKEN}\n")
	n, err := LoadNATS(file, Options{LookupEnv: env(map[string]string{"NATS_TOKEN": "t"})})
	require.NoError(t, err, "the target's secrets are not needed to reach NATS")
	assert.Equal(t, "nats://n:4222", n.ClientURL())
	assert.Equal(t, "t", n.Token.Reveal())

	_, err = LoadNATS(file, Options{LookupEnv: env(nil)})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "nats: environment variable NATS_TOKEN is not set")
}

// ClientConnection: --nats wins, then the file's nats section (its URL, or the embedded server's
// listen address), then the default; the section's credentials and --creds come along.
func TestClientConnection(t *testing.T) {
	t.Parallel()
	applied := func(t *testing.T, opts []nats.Option) nats.Options {
		t.Helper()
		o := nats.GetDefaultOptions()
		for _, f := range opts {
			require.NoError(t, f(&o))
		}
		return o
	}
	remote := write(t, minimal+"nats:\n  url: nats://n:4222\n  token: tok\n")
	embedded := write(t, minimal+"nats:\n  listen: 127.0.0.1:4333\n  user: u\n  password: p\n")
	creds := filepath.Join(t.TempDir(), "user.creds")
	require.NoError(t, os.WriteFile(creds, []byte("not read until a connection is made"), 0o600))

	for _, tc := range []struct {
		name, file, url, creds, wantURL string
		embedded                        bool
		check                           func(*testing.T, nats.Options)
	}{
		{name: "nothing given", wantURL: nats.DefaultURL, check: func(t *testing.T, o nats.Options) {
			assert.Empty(t, o.Token)
			assert.Nil(t, o.UserJWT)
		}},
		{name: "--nats alone", url: "nats://x:1", wantURL: "nats://x:1"},
		{name: "the file's URL and token", file: remote, wantURL: "nats://n:4222", check: func(t *testing.T, o nats.Options) {
			assert.Equal(t, "tok", o.Token)
		}},
		{name: "--nats over the file's URL, the file's token kept", file: remote, url: "nats://x:1", wantURL: "nats://x:1", check: func(t *testing.T, o nats.Options) {
			assert.Equal(t, "tok", o.Token)
		}},
		{name: "the embedded server's listen address and user", file: embedded, wantURL: "nats://127.0.0.1:4333", embedded: true, check: func(t *testing.T, o nats.Options) {
			assert.Equal(t, "u", o.User)
			assert.Equal(t, "p", o.Password)
		}},
		{name: "--nats over the embedded server", file: embedded, url: "nats://x:1", wantURL: "nats://x:1"},
		{name: "--creds", creds: creds, wantURL: nats.DefaultURL, check: func(t *testing.T, o nats.Options) {
			assert.NotNil(t, o.UserJWT, "credentials read from the file at connect time")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ClientConnection("scimflow-test", tc.file, tc.url, tc.creds)
			require.NoError(t, err)
			assert.Equal(t, tc.wantURL, c.URL)
			assert.Equal(t, tc.file, c.File)
			assert.Equal(t, tc.embedded, c.Embedded)
			o := applied(t, c.Options)
			assert.Equal(t, "scimflow-test", o.Name)
			if tc.check != nil {
				tc.check(t, o)
			}
		})
	}

	missing := filepath.Join(t.TempDir(), "absent.yaml")
	_, err := ClientConnection("scimflow-test", missing, "", "")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "absent.yaml", "the error names the file")

	// The embedded server runs only inside `worker run`: when it is not there, the error says so
	// and names the file that said it is embedded.
	c, err := ClientConnection("scimflow-test", embedded, "", "")
	require.NoError(t, err)
	c.URL = closedPortURL(t)
	_, err = c.Connect()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "connect to NATS at "+c.URL)
	assert.Contains(t, err.Error(), embedded+" has no nats.url, so NATS is the embedded server, which runs inside `worker run`")
	c, err = ClientConnection("scimflow-test", remote, closedPortURL(t), "")
	require.NoError(t, err)
	_, err = c.Connect()
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "embedded", "a server named by URL is not the embedded one")
}

// Neither --config nor --nats: ./scimflow.yaml when it exists, as `worker run` reads it, else the
// default URL. Not parallel: it changes the working directory.
func TestClientConnectionReadsTheDefaultFile(t *testing.T) {
	t.Chdir(t.TempDir())
	c, err := ClientConnection("scimflow-test", "", "", "")
	require.NoError(t, err)
	assert.Equal(t, nats.DefaultURL, c.URL, "no ./scimflow.yaml")
	assert.Empty(t, c.File)

	require.NoError(t, os.WriteFile(DefaultFile, []byte(minimal+"nats:\n  url: nats://n:4222\n"), 0o600))
	c, err = ClientConnection("scimflow-test", "", "", "")
	require.NoError(t, err)
	assert.Equal(t, "nats://n:4222", c.URL)
	assert.Equal(t, DefaultFile, c.File)
	c, err = ClientConnection("scimflow-test", "", "nats://x:1", "")
	require.NoError(t, err)
	assert.Equal(t, "nats://x:1", c.URL, "--nats alone reads no file")
	assert.Empty(t, c.File)

	require.NoError(t, os.WriteFile(DefaultFile, []byte("nats: [not, a, section"), 0o600))
	_, err = ClientConnection("scimflow-test", "", "", "")
	require.Error(t, err, "a ./scimflow.yaml that can't be read is an error, not a silent default")
	assert.Contains(t, err.Error(), DefaultFile)
}

// closedPortURL is a NATS URL on a loopback port nothing listens on.
func closedPortURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return "nats://" + addr
}
