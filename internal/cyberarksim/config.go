package cyberarksim

import (
	"cmp"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// Config configures a Server. The zero value is a CyberArk-profile server with the default
// credentials below, bearer tokens required on SCIM endpoints and no faults.
type Config struct {
	// AppID is the OAuth application id in the token path /oauth2/token/{AppID}; default "scimflow".
	AppID string
	// ClientID and ClientSecret authenticate the OAuth client; defaults "scimflow-client" and
	// "scimflow-secret".
	ClientID     string
	ClientSecret string
	// Username and Password are the resource owner accepted by grant_type=password; defaults
	// "svc-scimflow" and "svc-password".
	Username, Password string
	// TokenTTL is the lifetime of issued access tokens, reported as expires_in; default 1h.
	TokenTTL time.Duration
	// Generic serves a plain RFC 7644 server: no CyberArk quirks, no Containers,
	// ContainerPermissions or PrivilegedData, no password required on POST, canonical links.
	Generic bool
	// RequireAuth requires a valid credential on SCIM endpoints; nil means true.
	RequireAuth *bool
	// BasicAuth also accepts HTTP Basic with ClientID/ClientSecret on SCIM endpoints.
	BasicAuth bool
	// StaticToken is also accepted as a bearer token on SCIM endpoints ("" = none).
	StaticToken string
	// Faults are the initial fault-injection settings; change them with SetFaults.
	Faults Faults
	// Logger receives request and token logs; the zero value logs nothing. Secrets, tokens and
	// passwords are never logged.
	Logger zerolog.Logger

	// BaseURL is the external base URL written in meta.location and $ref links, e.g.
	// "https://tenant.example.com"; empty means derived from each request's Host (and TLS).
	// Snapshot uses it, or relative links when it is empty and no request was served yet.
	BaseURL string
	// Now is the clock; default time.Now. Tests move it to expire tokens or open outage windows.
	Now func() time.Time
	// Seed seeds the random source of fault injection; 0 means a random seed.
	Seed uint64
	// MaxBodyBytes bounds request bodies; default 16 MiB. Larger bodies get 413.
	MaxBodyBytes int64
}

// Defaults.
const (
	DefaultAppID        = "scimflow"
	DefaultClientID     = "scimflow-client"
	DefaultClientSecret = "scimflow-secret"
	DefaultUsername     = "svc-scimflow"
	DefaultPassword     = "svc-password"
	DefaultTokenTTL     = time.Hour
	DefaultMaxBodyBytes = 16 << 20
)

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	c.AppID = cmp.Or(c.AppID, DefaultAppID)
	c.ClientID = cmp.Or(c.ClientID, DefaultClientID)
	c.ClientSecret = cmp.Or(c.ClientSecret, DefaultClientSecret)
	c.Username = cmp.Or(c.Username, DefaultUsername)
	c.Password = cmp.Or(c.Password, DefaultPassword)
	c.TokenTTL = cmp.Or(c.TokenTTL, DefaultTokenTTL)
	c.MaxBodyBytes = cmp.Or(c.MaxBodyBytes, DefaultMaxBodyBytes)
	if c.RequireAuth == nil {
		t := true
		c.RequireAuth = &t
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	c.BaseURL = strings.TrimSuffix(c.BaseURL, "/")
	return c
}

// Validate reports every invalid field of c (after defaults), each error naming its field.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if strings.ContainsAny(c.AppID, "/?#") {
		errs = append(errs, fmt.Errorf("Config.AppID %q: must be one path segment", c.AppID))
	}
	if strings.Contains(c.ClientID, ":") {
		errs = append(errs, errors.New("Config.ClientID: must not contain ':' (it travels in HTTP Basic)"))
	}
	if c.TokenTTL < time.Second {
		errs = append(errs, fmt.Errorf("Config.TokenTTL %s: must be at least 1s", c.TokenTTL))
	}
	if c.MaxBodyBytes < 1024 {
		errs = append(errs, fmt.Errorf("Config.MaxBodyBytes %d: must be at least 1024", c.MaxBodyBytes))
	}
	if c.BaseURL != "" {
		u, err := url.Parse(c.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			errs = append(errs, fmt.Errorf("Config.BaseURL %q: must be an absolute http(s) URL without query or fragment", c.BaseURL))
		}
	}
	if err := c.Faults.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("Config.Faults: %w", err))
	}
	return errors.Join(errs...)
}
