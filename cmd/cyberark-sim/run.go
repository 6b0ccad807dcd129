package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/rs/zerolog"

	"github.com/scimflow/scimflow/internal/cli"
	"github.com/scimflow/scimflow/internal/cyberarksim"
)

// shutdownTimeout bounds how long in-flight requests may take once the context is cancelled.
const shutdownTimeout = 5 * time.Second

// run parses args, starts the simulator and serves until ctx is cancelled. The first line on
// stdout is "listening on <base URL>", so scripts and tests can start it on port 0.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runWithEnv(ctx, args, os.Getenv, stdout, stderr)
}

// options are the parsed command line.
type options struct {
	listen, baseURL, tlsCert, tlsKey, logLevel string
	noAuth, version                            bool
	seedUsers                                  int
	seedGroups, seedMemberships                int
	cfg                                        cyberarksim.Config
}

func parseFlags(args []string, getenv func(string) string, stdout, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := helpSim.FlagSet(stdout, stderr)
	fs.BoolVar(&o.version, "version", false, "print the module version, VCS revision and time, and Go version, and exit")
	c := &o.cfg
	fs.StringVar(&o.listen, "listen", "127.0.0.1:8080", "address to listen on (port 0 picks a free port)")
	fs.StringVar(&o.baseURL, "base-url", "", "external base URL written in links (default: from each request's Host)")
	fs.StringVar(&c.AppID, "app-id", cyberarksim.DefaultAppID, "OAuth application id: the token URL is /oauth2/token/<app-id>")
	fs.StringVar(&c.ClientID, "client-id", cyberarksim.DefaultClientID, "OAuth client id")
	fs.StringVar(&c.ClientSecret, "client-secret", "", "OAuth client secret (default $SIM_CLIENT_SECRET, else "+cyberarksim.DefaultClientSecret+")")
	fs.StringVar(&c.Username, "username", cyberarksim.DefaultUsername, "resource owner accepted by grant_type=password")
	fs.StringVar(&c.Password, "password", "", "resource owner password (default $SIM_PASSWORD, else "+cyberarksim.DefaultPassword+")")
	fs.DurationVar(&c.TokenTTL, "token-ttl", cyberarksim.DefaultTokenTTL, "access token lifetime")
	fs.StringVar(&c.StaticToken, "static-token", "", "also accept this bearer token (default $SIM_STATIC_TOKEN)")
	fs.BoolVar(&c.BasicAuth, "basic-auth", false, "also accept HTTP Basic with the client credentials on SCIM endpoints")
	fs.BoolVar(&o.noAuth, "no-auth", false, "serve SCIM endpoints without authentication")
	fs.BoolVar(&c.Generic, "generic", false, "plain RFC 7644 server instead of CyberArk (no PAM resources, no password requirement, canonical links)")
	fs.DurationVar(&c.Faults.Latency, "latency", 0, "latency added to every SCIM request")
	fs.DurationVar(&c.Faults.LatencyJitter, "jitter", 0, "extra uniform random latency, 0..jitter")
	fs.Float64Var(&c.Faults.RateLimit429, "rate-429", 0, "fraction of SCIM requests answered 429")
	fs.DurationVar(&c.Faults.RetryAfter, "retry-after", 0, "Retry-After sent with 429s (0: none)")
	fs.Float64Var(&c.Faults.Error5xxRate, "rate-5xx", 0, "fraction of SCIM requests answered 500/502/503")
	fs.Float64Var(&c.Faults.PhantomWriteRate, "rate-phantom", 0, "fraction of SCIM writes applied but answered 502")
	fs.IntVar(&c.Faults.MaxConcurrent, "max-concurrent", 0, "SCIM requests in flight beyond this many get 429 (0: no limit)")
	fs.DurationVar(&c.Faults.ExpireTokensAfter, "expire-tokens-after", 0, "tokens stop working this long after issue, whatever expires_in says (0: off)")
	fs.Uint64Var(&c.Seed, "seed", 0, "random seed for fault injection (0: random)")
	fs.IntVar(&o.seedUsers, "seed-users", 0, "generate this many synthetic users at start (user0000001@example.com, ...)")
	fs.IntVar(&o.seedGroups, "seed-groups", 0, "generate this many synthetic groups at start (group000001, ...), after the users")
	fs.IntVar(&o.seedMemberships, "seed-memberships", 0, "memberships spread over the --seed-groups groups (users in creation order, wrapping)")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "PEM certificate file: serve HTTPS (TLS 1.2 or later) with --tls-key")
	fs.StringVar(&o.tlsKey, "tls-key", "", "PEM private key file for --tls-cert")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug logs every request; info, warn, error")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if c.ClientSecret == "" {
		c.ClientSecret = getenv("SIM_CLIENT_SECRET")
	}
	if c.Password == "" {
		c.Password = getenv("SIM_PASSWORD")
	}
	if c.StaticToken == "" {
		c.StaticToken = getenv("SIM_STATIC_TOKEN")
	}
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return nil, errors.New("--tls-cert and --tls-key go together")
	}
	if o.seedUsers < 0 {
		return nil, fmt.Errorf("--seed-users %d: must not be negative", o.seedUsers)
	}
	if o.noAuth {
		off := false
		c.RequireAuth = &off
	}
	c.BaseURL = o.baseURL
	return o, nil
}

func runWithEnv(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, getenv, stdout, stderr)
	if err == cli.ExitError(0) { // -h printed the help
		return nil
	}
	if err != nil {
		return err
	}
	if o.version {
		cli.WriteVersion(stdout, "cyberark-sim")
		return nil
	}
	level, err := zerolog.ParseLevel(o.logLevel)
	if err != nil {
		return fmt.Errorf("--log-level %q: %w", o.logLevel, err)
	}
	logger := zerolog.New(stderr).Level(level).With().Timestamp().Str("component", "cyberark-sim").Logger()
	o.cfg.Logger = logger

	sim, err := cyberarksim.New(o.cfg)
	if err != nil {
		return err
	}
	if o.seedUsers > 0 {
		start := time.Now()
		if err := sim.SeedSyntheticUsers(o.seedUsers); err != nil {
			return err
		}
		logger.Info().Int("users", o.seedUsers).Dur("took", time.Since(start)).Msg("synthetic users seeded")
	}
	if o.seedGroups > 0 {
		start := time.Now()
		if err := sim.SeedSyntheticGroups(o.seedGroups, o.seedMemberships); err != nil {
			return err
		}
		logger.Info().Int("groups", o.seedGroups).Int("memberships", o.seedMemberships).Dur("took", time.Since(start)).Msg("synthetic groups seeded")
	}

	var tlsConfig *tls.Config
	if o.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(o.tlsCert, o.tlsKey)
		if err != nil {
			return fmt.Errorf("load TLS key pair %s, %s: %w", o.tlsCert, o.tlsKey, err)
		}
		tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.listen, err)
	}
	scheme := "http"
	if tlsConfig != nil {
		ln = tls.NewListener(ln, tlsConfig)
		scheme = "https"
	}
	srv := &http.Server{
		Handler:           sim,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          log.New(logWriter{logger}, "", 0),
	}
	base := scheme + "://" + ln.Addr().String()
	fmt.Fprintf(stdout, "listening on %s\n", base)
	logger.Info().Str("url", base).Str("token_url", base+"/oauth2/token/"+o.cfg.AppID).
		Bool("generic", o.cfg.Generic).Interface("faults", o.cfg.Faults).Msg("cyberark-sim started")

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("serve on %s: %w", base, err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve on %s: %w", base, err)
	}
	logger.Info().Msg("cyberark-sim stopped")
	return nil
}

// logWriter sends net/http's server errors (TLS handshake failures and the like) to zerolog.
type logWriter struct{ l zerolog.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	w.l.Warn().Str("source", "net/http").Msg(string(trimNewline(p)))
	return len(p), nil
}

func trimNewline(p []byte) []byte {
	if n := len(p); n > 0 && p[n-1] == '\n' {
		return p[:n-1]
	}
	return p
}
