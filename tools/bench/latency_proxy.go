package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// latencyProxy stands in front of the simulator to give lookups and writes different latencies
// (the simulator has one latency for every request): SCIM GETs wait getDelay, other SCIM requests
// writeDelay, then go to the simulator. Like the simulator's own cap, more than limit SCIM
// requests in flight (waiting included) are answered 429 at once. Token requests pass untouched.
type latencyProxy struct {
	srv                  *http.Server
	url                  string
	getDelay, writeDelay time.Duration
	limit                int64
	inFlight, rejected   atomic.Int64
}

func newLatencyProxy(target string, getDelay, writeDelay time.Duration, limit int) (*latencyProxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("latency proxy target %q: %w", target, err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 512, 512
	rp.Transport = tr
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("latency proxy: %w", err)
	}
	p := &latencyProxy{url: "http://" + l.Addr().String(), getDelay: getDelay, writeDelay: writeDelay, limit: int64(limit)}
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/scim/") {
			rp.ServeHTTP(w, r)
			return
		}
		if n := p.inFlight.Add(1); p.limit > 0 && n > p.limit {
			p.inFlight.Add(-1)
			p.rejected.Add(1)
			w.Header().Set("Content-Type", "application/scim+json")
			w.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprint(w, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"429","detail":"too many requests in flight"}`)
			return
		}
		defer p.inFlight.Add(-1)
		d := p.writeDelay
		if r.Method == http.MethodGet {
			d = p.getDelay
		}
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
		rp.ServeHTTP(w, r)
	})}
	go func() { _ = p.srv.Serve(l) }()
	return p, nil
}

func (p *latencyProxy) close() { _ = p.srv.Close() }
