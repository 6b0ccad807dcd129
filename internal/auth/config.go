package auth

import (
	"cmp"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"
)

// Mode is how requests to the target are authenticated.
type Mode string

// The authentication modes of the Omada connector, plus a static bearer token.
const (
	ModeNone   Mode = "none"   // no Authorization header
	ModeBasic  Mode = "basic"  // HTTP Basic with Basic.Username and Basic.Password
	ModeBearer Mode = "bearer" // a static token from Bearer.Token
	ModeOAuth2 Mode = "oauth2" // a token from the OAuth2 token endpoint
)

// OAuth 2.0 grant types.
const (
	GrantClientCredentials = "client_credentials"
	GrantPassword          = "password"
)

// Token cache policies (Omada's "Token cache policy").
const (
	CacheAlways   = "always"   // reuse a token until shortly before it expires
	CacheInterval = "interval" // reuse a token for TokenCacheSeconds (never past its expiry)
	CacheNever    = "never"    // a new token for every request
)

// How the client authenticates at the token and revocation endpoints.
const (
	ClientAuthHeader = "header" // HTTP Basic with the form-encoded client id and secret (RFC 6749 §2.3.1)
	ClientAuthBody   = "body"   // client_id and client_secret in the form body
)

// Config selects and configures the authentication mode. The zero value is mode "none".
type Config struct {
	// Mode is none (default), basic, bearer or oauth2.
	Mode Mode `yaml:"mode"`
	// Basic holds the credentials of mode basic.
	Basic BasicConfig `yaml:"basic"`
	// Bearer holds the static token of mode bearer.
	Bearer BearerConfig `yaml:"bearer"`
	// OAuth2 configures mode oauth2.
	OAuth2 OAuth2Config `yaml:"oauth2"`
}

// BasicConfig holds HTTP Basic credentials.
type BasicConfig struct {
	Username string `yaml:"username"`
	Password Secret `yaml:"password"`
}

// BearerConfig holds a static bearer token.
type BearerConfig struct {
	Token Secret `yaml:"token"`
}

// OAuth2Config configures the oauth2 mode.
type OAuth2Config struct {
	// GrantType is client_credentials (default) or password.
	GrantType string `yaml:"grantType"`
	// TokenURL is the token endpoint, e.g. https://tenant.id.cyberark.cloud/oauth2/token/<app-id>.
	TokenURL string `yaml:"tokenURL"`
	// ClientID and ClientSecret authenticate the client. ClientSecret may be empty for a public
	// client using the password grant.
	ClientID     string `yaml:"clientID"`
	ClientSecret Secret `yaml:"clientSecret"`
	// Scopes are sent space-separated as "scope" (CyberArk: ["scim"]).
	Scopes []string `yaml:"scopes"`
	// Resource is sent as the RFC 8707 "resource" parameter when set; it must be an absolute URI.
	Resource string `yaml:"resource"`
	// RevokeURL is the RFC 7009 revocation endpoint; Authorizer.Close revokes the token there.
	RevokeURL string `yaml:"revokeURL"`
	// TokenCache is always (default), interval or never.
	TokenCache string `yaml:"tokenCache"`
	// TokenCacheSeconds is how long a token is reused with TokenCache interval (required there).
	TokenCacheSeconds int `yaml:"tokenCacheSeconds"`
	// Username and Password are the resource owner's credentials for the password grant.
	Username string `yaml:"username"`
	Password Secret `yaml:"password"`
	// ClientAuth is how the client authenticates at the token endpoint: header (default, HTTP
	// Basic) or body (client_id and client_secret form parameters).
	ClientAuth string `yaml:"clientAuth"`
	// Timeout bounds one token or revocation request; default 30s.
	Timeout time.Duration `yaml:"timeout"`
}

// withDefaults returns the config with every zero value replaced by its default.
func (c Config) withDefaults() Config {
	c.Mode = cmp.Or(c.Mode, ModeNone)
	o := &c.OAuth2
	o.GrantType = cmp.Or(o.GrantType, GrantClientCredentials)
	o.TokenCache = cmp.Or(o.TokenCache, CacheAlways)
	o.ClientAuth = cmp.Or(o.ClientAuth, ClientAuthHeader)
	o.Timeout = cmp.Or(o.Timeout, 30*time.Second)
	return c
}

// unexpanded matches an environment reference the config loader left in place.
var unexpanded = regexp.MustCompile(`\$\{[A-Za-z_][A-Za-z0-9_]*\}`)

// Validate reports every problem of the config, each naming its field ("auth.oauth2.tokenURL: ...").
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("auth.%s: "+format, append([]any{field}, args...)...))
	}
	for field, v := range map[string]string{
		"basic.password": c.Basic.Password.Reveal(), "bearer.token": c.Bearer.Token.Reveal(),
		"oauth2.clientSecret": c.OAuth2.ClientSecret.Reveal(), "oauth2.password": c.OAuth2.Password.Reveal(),
		"basic.username": c.Basic.Username, "oauth2.clientID": c.OAuth2.ClientID, "oauth2.username": c.OAuth2.Username,
	} {
		if m := unexpanded.FindString(v); m != "" {
			add(field, "environment reference %s was not expanded (is the variable set?)", m)
		}
	}
	switch c.Mode {
	case ModeNone:
	case ModeBasic:
		if c.Basic.Username == "" {
			add("basic.username", "required with mode basic")
		}
		if strings.Contains(c.Basic.Username, ":") {
			add("basic.username", "must not contain ':' (RFC 7617)")
		}
		if c.Basic.Password.IsZero() {
			add("basic.password", "required with mode basic")
		}
	case ModeBearer:
		if c.Bearer.Token.IsZero() {
			add("bearer.token", "required with mode bearer")
		}
		if strings.ContainsAny(c.Bearer.Token.Reveal(), " \t\r\n") {
			add("bearer.token", "must not contain whitespace")
		}
	case ModeOAuth2:
		errs = append(errs, c.OAuth2.validate()...)
	default:
		add("mode", "%q is not one of none, basic, bearer, oauth2", c.Mode)
	}
	return errors.Join(errs...)
}

func (o OAuth2Config) validate() []error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("auth.oauth2.%s: "+format, append([]any{field}, args...)...))
	}
	checkURL := func(field, raw string, required bool) {
		if raw == "" {
			if required {
				add(field, "required with mode oauth2")
			}
			return
		}
		u, err := url.Parse(raw)
		if err != nil {
			add(field, "%q is not a URL: %v", raw, err)
			return
		}
		if u.Scheme != "https" && u.Scheme != "http" || u.Host == "" {
			add(field, "%q must be an absolute http or https URL", raw)
		}
		if u.User != nil {
			add(field, "must not carry credentials in the URL")
		}
	}
	checkURL("tokenURL", o.TokenURL, true)
	checkURL("revokeURL", o.RevokeURL, false)
	if o.Resource != "" {
		if u, err := url.Parse(o.Resource); err != nil || !u.IsAbs() || u.Fragment != "" {
			add("resource", "%q must be an absolute URI without a fragment (RFC 8707)", o.Resource)
		}
	}
	if o.ClientID == "" {
		add("clientID", "required with mode oauth2")
	}
	switch o.GrantType {
	case GrantClientCredentials:
		if o.ClientSecret.IsZero() {
			add("clientSecret", "required with grant type client_credentials")
		}
	case GrantPassword:
		if o.Username == "" {
			add("username", "required with grant type password")
		}
		if o.Password.IsZero() {
			add("password", "required with grant type password")
		}
	default:
		add("grantType", "%q is not one of client_credentials, password", o.GrantType)
	}
	switch o.TokenCache {
	case CacheAlways, CacheNever:
		if o.TokenCacheSeconds != 0 {
			add("tokenCacheSeconds", "only meaningful with tokenCache interval (tokenCache is %s)", o.TokenCache)
		}
	case CacheInterval:
		if o.TokenCacheSeconds <= 0 {
			add("tokenCacheSeconds", "must be a positive number of seconds with tokenCache interval, got %d", o.TokenCacheSeconds)
		}
	default:
		add("tokenCache", "%q is not one of always, interval, never", o.TokenCache)
	}
	switch o.ClientAuth {
	case ClientAuthHeader, ClientAuthBody:
	default:
		add("clientAuth", "%q is not one of header, body", o.ClientAuth)
	}
	for i, s := range o.Scopes {
		if s == "" || strings.ContainsAny(s, " \"\\") {
			add(fmt.Sprintf("scopes[%d]", i), "%q is not a valid scope token (RFC 6749 §3.3)", s)
		}
	}
	if o.Timeout < 0 {
		add("timeout", "must not be negative, got %s", o.Timeout)
	}
	return errs
}

// ExpandEnv returns a copy of the config with ${NAME} references in credentials and identifiers
// replaced by the environment's values, looked up with lookup (os.LookupEnv when nil). A
// reference to an unset variable is an error naming the field and the variable, never the value.
func (c Config) ExpandEnv(lookup func(string) (string, bool)) (Config, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	var errs []error
	expand := func(field, v string) string {
		return unexpanded.ReplaceAllStringFunc(v, func(ref string) string {
			name := ref[2 : len(ref)-1]
			val, ok := lookup(name)
			if !ok {
				errs = append(errs, fmt.Errorf("auth.%s: environment variable %s is not set", field, name))
				return ref
			}
			return val
		})
	}
	c.Basic.Username = expand("basic.username", c.Basic.Username)
	c.Basic.Password = Secret(expand("basic.password", c.Basic.Password.Reveal()))
	c.Bearer.Token = Secret(expand("bearer.token", c.Bearer.Token.Reveal()))
	c.OAuth2.ClientID = expand("oauth2.clientID", c.OAuth2.ClientID)
	c.OAuth2.ClientSecret = Secret(expand("oauth2.clientSecret", c.OAuth2.ClientSecret.Reveal()))
	c.OAuth2.Username = expand("oauth2.username", c.OAuth2.Username)
	c.OAuth2.Password = Secret(expand("oauth2.password", c.OAuth2.Password.Reveal()))
	return c, errors.Join(errs...)
}
