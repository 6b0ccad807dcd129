package events

import (
	"cmp"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// EmbeddedConfig configures the in-process JetStream server the worker starts when no NATS URL is
// configured.
type EmbeddedConfig struct {
	// Listen is the client address, default 127.0.0.1:4222; port 0 picks a free port.
	Listen string
	// StoreDir is where JetStream keeps its files; required.
	StoreDir string
	// SyncInterval is how often JetStream flushes to disk. Zero means sync_interval: always
	// (fsync on every write), the durable default of DESIGN.md §5; a positive value opts out.
	SyncInterval time.Duration
	// ServerName names the server in logs and cluster metadata; default "scimflow-embedded".
	ServerName string
}

// EmbeddedServer is a running in-process NATS server with JetStream.
type EmbeddedServer struct {
	srv *server.Server
}

// StartEmbedded starts an in-process JetStream server and waits until it accepts connections.
func StartEmbedded(cfg EmbeddedConfig) (*EmbeddedServer, error) {
	if cfg.StoreDir == "" {
		return nil, fmt.Errorf("embedded nats: nats.storeDir is required")
	}
	host, portText, err := net.SplitHostPort(cmp.Or(cfg.Listen, "127.0.0.1:4222"))
	if err != nil {
		return nil, fmt.Errorf("embedded nats: nats.listen %q: %w", cfg.Listen, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("embedded nats: nats.listen %q: bad port", cfg.Listen)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	opts := &server.Options{
		ServerName: cmp.Or(cfg.ServerName, "scimflow-embedded"),
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   cfg.StoreDir,
		NoSigs:     true,
		NoLog:      true,
		// Leave headroom for large outcome batches.
		MaxPayload: 8 << 20,
	}
	if cfg.SyncInterval > 0 {
		opts.SyncInterval = cfg.SyncInterval
	} else {
		opts.SyncAlways = true
		opts.SyncInterval = 2 * time.Minute
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(15 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("embedded nats: not ready after 15s on %s", cfg.Listen)
	}
	return &EmbeddedServer{srv: srv}, nil
}

// ClientURL is the URL clients connect to.
func (e *EmbeddedServer) ClientURL() string { return e.srv.ClientURL() }

// Shutdown stops the server and waits for it.
func (e *EmbeddedServer) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}
