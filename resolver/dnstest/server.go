package dnstest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Behavior is how the server treats queries for a name.
type Behavior int

const (
	// Answer answers from the records (the default).
	Answer Behavior = iota
	// ServFail answers SERVFAIL (RCODE 2).
	ServFail
	// Refused answers REFUSED (RCODE 5).
	Refused
	// Drop never answers: the client times out.
	Drop
	// TruncateUDP answers queries over UDP with an empty, truncated (TC)
	// response, forcing the client to retry over TCP (RFC 7766 5); TCP
	// queries are answered normally.
	TruncateUDP
)

// AllNames, given as the name to SetBehavior or SetAuthentic, applies the
// setting to every name that has no setting of its own.
const AllNames = "*"

// Query is a query the server received.
type Query struct {
	// Name is the query name, lower case, with trailing dot.
	Name string
	// Type is the query type, e.g. "MX".
	Type string
	// Net is "udp" or "tcp".
	Net string
	// DO reports whether the query carried EDNS0 with the DO bit.
	DO bool
}

// Server is an authoritative DNS server on loopback. Its methods are safe
// for concurrent use.
type Server struct {
	addr string
	udp  *dns.Server
	tcp  *dns.Server

	mu        sync.Mutex
	records   []dns.RR
	behavior  map[string]Behavior
	authentic map[string]bool
	noChase   bool
	log       []Query
	closed    bool
}

// Start starts a server on 127.0.0.1 on a random port (the same for UDP
// and TCP) serving records, each a zone-file line such as
// "example.test. 300 IN MX 10 mx.example.test." (owner names are absolute
// whether or not they end with a dot).
func Start(records ...string) (*Server, error) {
	s := &Server{behavior: map[string]Behavior{}, authentic: map[string]bool{}}
	if err := s.Add(records...); err != nil {
		return nil, err
	}
	// Find a port free for both UDP and TCP: the UDP port is random, the
	// TCP one may be taken, so try a few times.
	var (
		pc  net.PacketConn
		ln  net.Listener
		err error
	)
	for range 20 {
		pc, err = net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("dnstest: listen udp: %w", err)
		}
		ln, err = net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			break
		}
		pc.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("dnstest: listen tcp: %w", err)
	}
	s.addr = pc.LocalAddr().String()
	udpUp, tcpUp := make(chan struct{}), make(chan struct{})
	s.udp = &dns.Server{PacketConn: pc, Handler: s, NotifyStartedFunc: func() { close(udpUp) }}
	s.tcp = &dns.Server{Listener: ln, Handler: s, NotifyStartedFunc: func() { close(tcpUp) },
		// A client that sends nothing more on a TCP connection is dropped
		// after this long (RFC 7766 6.2.3 leaves the value to the server).
		IdleTimeout: func() time.Duration { return 10 * time.Second }}
	errc := make(chan error, 2)
	go func() { errc <- s.udp.ActivateAndServe() }()
	go func() { errc <- s.tcp.ActivateAndServe() }()
	for _, up := range []chan struct{}{udpUp, tcpUp} {
		select {
		case <-up:
		case err := <-errc:
			s.Close()
			return nil, fmt.Errorf("dnstest: serve: %w", err)
		}
	}
	return s, nil
}

// NewServer is Start for tests: it fails t if the server cannot start or
// a record does not parse, and closes the server when the test ends.
func NewServer(t testing.TB, records ...string) *Server {
	t.Helper()
	s, err := Start(records...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Addr returns the server's address, "127.0.0.1:port", for UDP and TCP.
func (s *Server) Addr() string { return s.addr }

// Close stops the server.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var errs []error
	for _, srv := range []*dns.Server{s.udp, s.tcp} {
		if srv != nil {
			if err := srv.ShutdownContext(ctx); err != nil && !strings.Contains(err.Error(), "not started") {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// Add adds records, each a zone-file line. The default TTL is 3600 and the
// class IN.
func (s *Server) Add(records ...string) error {
	rrs := make([]dns.RR, 0, len(records))
	for _, r := range records {
		rr, err := dns.NewRR(r)
		if err != nil {
			return fmt.Errorf("dnstest: record %q: %w", r, err)
		}
		if rr == nil {
			return fmt.Errorf("dnstest: record %q: empty", r)
		}
		rrs = append(rrs, rr)
	}
	s.AddRR(rrs...)
	return nil
}

// AddRR adds records built with github.com/miekg/dns.
func (s *Server) AddRR(rrs ...dns.RR) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rr := range rrs {
		rr = dns.Copy(rr)
		rr.Header().Name = strings.ToLower(dns.Fqdn(rr.Header().Name))
		s.records = append(s.records, rr)
	}
}

// Remove deletes the records of name with type typ ("MX", "A", ...), or
// all records of name when typ is "".
func (s *Server) Remove(name, typ string) {
	name = fqdn(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := s.records[:0]
	for _, rr := range s.records {
		h := rr.Header()
		if h.Name == name && (typ == "" || strings.EqualFold(dns.TypeToString[h.Rrtype], typ)) {
			continue
		}
		kept = append(kept, rr)
	}
	clear(s.records[len(kept):])
	s.records = kept
}

// SetBehavior sets how queries for name are treated; name AllNames sets
// the default for names without a behavior of their own.
func (s *Server) SetBehavior(name string, b Behavior) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.behavior[key(name)] = b
}

// SetAuthentic makes the server set the AD bit on answers for name (or,
// with AllNames, for every name without a setting of its own) when the
// query asked for DNSSEC data (DO bit) or for the AD bit, as a validating
// recursive server would (RFC 6840 5.8).
func (s *Server) SetAuthentic(name string, ad bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.authentic[key(name)] = ad
}

// SetChaseCNAME controls whether answers for an alias include the records
// at the end of its CNAME chain, as a recursive server's do (the default),
// or only the first CNAME, so that the client must follow the chain
// itself.
func (s *Server) SetChaseCNAME(chase bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.noChase = !chase
}

// Queries returns the number of queries received.
func (s *Server) Queries() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.log)
}

// Log returns the queries received, oldest first.
func (s *Server) Log() []Query {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Query(nil), s.log...)
}

func fqdn(name string) string { return strings.ToLower(dns.Fqdn(name)) }

func key(name string) string {
	if name == AllNames {
		return name
	}
	return fqdn(name)
}
