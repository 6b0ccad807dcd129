package auth

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func validOAuth2() Config {
	return Config{Mode: ModeOAuth2, OAuth2: OAuth2Config{
		TokenURL: "https://tenant.example/oauth2/token/scimflow", ClientID: "id", ClientSecret: "secret",
	}}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(*Config)
		want   []string // substrings of the error; empty: valid
	}{
		{name: "zero value is mode none", mutate: func(c *Config) { *c = Config{} }},
		{name: "oauth2 defaults", mutate: func(*Config) {}},
		{name: "unknown mode", mutate: func(c *Config) { c.Mode = "kerberos" }, want: []string{`auth.mode: "kerberos" is not one of`}},
		{name: "basic needs credentials", mutate: func(c *Config) { *c = Config{Mode: ModeBasic} },
			want: []string{"auth.basic.username: required", "auth.basic.password: required"}},
		{name: "basic username with colon", mutate: func(c *Config) {
			*c = Config{Mode: ModeBasic, Basic: BasicConfig{Username: "a:b", Password: "p"}}
		}, want: []string{"auth.basic.username: must not contain ':'"}},
		{name: "bearer needs token", mutate: func(c *Config) { *c = Config{Mode: ModeBearer} }, want: []string{"auth.bearer.token: required"}},
		{name: "bearer token whitespace", mutate: func(c *Config) { *c = Config{Mode: ModeBearer, Bearer: BearerConfig{Token: "a b"}} },
			want: []string{"auth.bearer.token: must not contain whitespace"}},
		{name: "oauth2 missing everything", mutate: func(c *Config) { *c = Config{Mode: ModeOAuth2} },
			want: []string{"auth.oauth2.tokenURL: required", "auth.oauth2.clientID: required", "auth.oauth2.clientSecret: required"}},
		{name: "relative token url", mutate: func(c *Config) { c.OAuth2.TokenURL = "/oauth2/token" }, want: []string{"auth.oauth2.tokenURL:", "absolute"}},
		{name: "credentials in url", mutate: func(c *Config) { c.OAuth2.TokenURL = "https://u:p@h/t" }, want: []string{"auth.oauth2.tokenURL: must not carry credentials"}},
		{name: "bad revoke url", mutate: func(c *Config) { c.OAuth2.RevokeURL = "ftp://x/revoke" }, want: []string{"auth.oauth2.revokeURL:"}},
		{name: "resource not absolute", mutate: func(c *Config) { c.OAuth2.Resource = "scim" }, want: []string{"auth.oauth2.resource:", "RFC 8707"}},
		{name: "resource with fragment", mutate: func(c *Config) { c.OAuth2.Resource = "https://api/#x" }, want: []string{"auth.oauth2.resource:"}},
		{name: "unknown grant", mutate: func(c *Config) { c.OAuth2.GrantType = "implicit" }, want: []string{`auth.oauth2.grantType: "implicit"`}},
		{name: "password grant needs owner", mutate: func(c *Config) { c.OAuth2.GrantType = GrantPassword },
			want: []string{"auth.oauth2.username: required", "auth.oauth2.password: required"}},
		{name: "password grant public client", mutate: func(c *Config) {
			c.OAuth2.GrantType, c.OAuth2.ClientSecret, c.OAuth2.Username, c.OAuth2.Password = GrantPassword, "", "u", "p"
		}},
		{name: "interval needs seconds", mutate: func(c *Config) { c.OAuth2.TokenCache = CacheInterval },
			want: []string{"auth.oauth2.tokenCacheSeconds: must be a positive number"}},
		{name: "seconds without interval", mutate: func(c *Config) { c.OAuth2.TokenCacheSeconds = 30 },
			want: []string{"auth.oauth2.tokenCacheSeconds: only meaningful with tokenCache interval"}},
		{name: "unknown cache policy", mutate: func(c *Config) { c.OAuth2.TokenCache = "sometimes" }, want: []string{`auth.oauth2.tokenCache: "sometimes"`}},
		{name: "unknown client auth", mutate: func(c *Config) { c.OAuth2.ClientAuth = "jwt" }, want: []string{`auth.oauth2.clientAuth: "jwt"`}},
		{name: "bad scope", mutate: func(c *Config) { c.OAuth2.Scopes = []string{"scim", "a b"} }, want: []string{"auth.oauth2.scopes[1]:"}},
		{name: "unexpanded env reference", mutate: func(c *Config) { c.OAuth2.ClientSecret = "${SCIM_SECRET}" },
			want: []string{"auth.oauth2.clientSecret: environment reference ${SCIM_SECRET} was not expanded"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := validOAuth2()
			tt.mutate(&c)
			err := c.Validate()
			if len(tt.want) == 0 {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestConfigValidateNeverShowsSecrets(t *testing.T) {
	t.Parallel()
	c := Config{Mode: ModeOAuth2, OAuth2: OAuth2Config{ClientSecret: "very-secret-value", TokenCache: "bogus"}}
	err := c.Validate()
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "very-secret-value")
}

func TestConfigExpandEnv(t *testing.T) {
	t.Parallel()
	env := map[string]string{"CID": "client-1", "CSECRET": "s3cr3t"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	c := validOAuth2()
	c.OAuth2.ClientID, c.OAuth2.ClientSecret = "${CID}", "pre-${CSECRET}"
	got, err := c.ExpandEnv(lookup)
	require.NoError(t, err)
	assert.Equal(t, "client-1", got.OAuth2.ClientID)
	assert.Equal(t, "pre-s3cr3t", got.OAuth2.ClientSecret.Reveal())
	assert.Equal(t, "${CID}", c.OAuth2.ClientID, "the receiver is not modified")

	c.OAuth2.Password = "${MISSING}"
	_, err = c.ExpandEnv(lookup)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "auth.oauth2.password: environment variable MISSING is not set")
}
