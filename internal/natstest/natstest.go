// Package natstest starts real, embedded NATS JetStream servers for tests.
package natstest

import (
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Server is an in-process JetStream server with a client connection.
type Server struct {
	Server *server.Server
	URL    string
	Conn   *nats.Conn
	JS     jetstream.JetStream
	opts   *server.Options
}

// MustStart starts a JetStream server on a free loopback port with its store in a temporary
// directory, connects to it, and stops both when the test ends.
func MustStart(tb testing.TB) *Server {
	tb.Helper()
	return MustStartIn(tb, tb.TempDir())
}

// MustStartIn is MustStart with a given store directory, so that a test can restart a server on the
// same data.
func MustStartIn(tb testing.TB, storeDir string) *Server {
	tb.Helper()
	return MustStartWith(tb, storeDir, nil)
}

// MustStartWith is MustStartIn with the server's options changed by configure first (users and
// their permissions, say; the client connection is then the server's NoAuthUser).
func MustStartWith(tb testing.TB, storeDir string, configure func(*server.Options)) *Server {
	tb.Helper()
	opts := &server.Options{
		Host:      "127.0.0.1",
		Port:      server.RANDOM_PORT,
		JetStream: true,
		StoreDir:  storeDir,
		NoSigs:    true,
		NoLog:     true,
	}
	if configure != nil {
		configure(opts)
	}
	srv := start(tb, opts)
	opts.Port = srv.Addr().(*net.TCPAddr).Port // a restart comes back where the clients look
	nc, err := nats.Connect(srv.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		srv.Shutdown()
		tb.Fatalf("natstest: connect: %v", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatalf("natstest: jetstream: %v", err)
	}
	s := &Server{Server: srv, URL: srv.ClientURL(), Conn: nc, JS: js, opts: opts}
	tb.Cleanup(s.Stop)
	return s
}

func start(tb testing.TB, opts *server.Options) *server.Server {
	tb.Helper()
	srv, err := server.NewServer(opts)
	if err != nil {
		tb.Fatalf("natstest: new server: %v", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		tb.Fatal("natstest: server not ready")
	}
	return srv
}

// Restart shuts the server down, calls between while it is down (to change its store, say), and
// starts it again on the same port and store directory. The clients reconnect by themselves.
func (s *Server) Restart(tb testing.TB, between func()) {
	tb.Helper()
	s.Server.Shutdown()
	s.Server.WaitForShutdown()
	if between != nil {
		between()
	}
	s.Server = start(tb, s.opts)
}

// StoreDir is the server's store directory.
func (s *Server) StoreDir() string { return s.opts.StoreDir }

// Stop closes the connection and shuts the server down; safe to call twice.
func (s *Server) Stop() {
	if !s.Conn.IsClosed() {
		s.Conn.Close()
	}
	s.Server.Shutdown()
	s.Server.WaitForShutdown()
}
