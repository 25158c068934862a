package smtpclient_test

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailblocks/mailblocks/internal/testutil"
)

// script says how a fakeServer answers. Replies are complete reply lines
// without CRLF ("550 5.1.1 No such user"); an empty reply means the normal
// positive one.
type script struct {
	// Greeting replaces "220 fake.test ESMTP".
	Greeting string
	// Ext lists the EHLO keywords; nil means 8BITMIME, ENHANCEDSTATUSCODES,
	// PIPELINING.
	Ext []string
	// Reply maps a verb (EHLO, HELO, MAIL, RCPT, DATA, ".", RSET,
	// STARTTLS) to its reply.
	Reply map[string]string
	// Rcpt maps a recipient address to its RCPT reply.
	Rcpt map[string]string
	// Hang names a verb (or "CONNECT" for the greeting) after which the
	// server never answers again.
	Hang string
	// StallInData answers 354 to DATA and then stops reading.
	StallInData bool
	// DropInData closes the connection after the first line of the
	// message content.
	DropInData bool
	// TLS, when set, is used for STARTTLS (add "STARTTLS" to Ext).
	TLS *tls.Config
	// BadTLS answers 220 to STARTTLS and then sends garbage instead of a
	// TLS handshake.
	BadTLS bool
}

// received is one message a fakeServer accepted.
type received struct {
	From     string // MAIL FROM argument line after the colon
	Rcpts    []string
	Data     string
	TLS      bool
	ConnSeq  int
	Commands []string
}

// fakeServer is a scriptable SMTP server on a real socket: it answers each
// command as its script says and records what it received.
type fakeServer struct {
	t   testing.TB
	ln  net.Listener
	scr script

	mu    sync.Mutex
	conns int
	msgs  []received
	cmds  []string
	wg    sync.WaitGroup
	open  map[net.Conn]bool
	done  chan struct{}
	once  sync.Once
}

// startFake listens on addr ("127.0.0.1:0", "127.0.0.3:2525"...).
func startFake(t testing.TB, addr string, scr script) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	return serveFake(t, ln, scr)
}

func serveFake(t testing.TB, ln net.Listener, scr script) *fakeServer {
	s := &fakeServer{t: t, ln: ln, scr: scr, open: map[net.Conn]bool{}, done: make(chan struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns++
			seq := s.conns
			s.open[c] = true
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.serve(c, seq)
				s.mu.Lock()
				delete(s.open, c)
				s.mu.Unlock()
				c.Close()
			}()
		}
	}()
	t.Cleanup(s.Close)
	return s
}

func (s *fakeServer) Close() {
	s.ln.Close()
	s.once.Do(func() { close(s.done) })
	s.mu.Lock()
	for c := range s.open {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *fakeServer) Addr() string { return s.ln.Addr().String() }

func (s *fakeServer) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// Conns returns the number of connections accepted.
func (s *fakeServer) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

// Messages returns the messages accepted so far.
func (s *fakeServer) Messages() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.msgs...)
}

// Commands returns every command line received, in order.
func (s *fakeServer) Commands() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.cmds...)
}

func (s *fakeServer) serve(c net.Conn, seq int) {
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	r := bufio.NewReader(c)
	w := bufio.NewWriter(c)
	reply := func(line string) bool {
		w.WriteString(line + "\r\n")
		return w.Flush() == nil
	}
	hang := func() {
		// Never answer: wait until the client gives up and closes.
		_, _ = r.ReadString(0)
	}
	if s.scr.Hang == "CONNECT" {
		hang()
		return
	}
	greet := s.scr.Greeting
	if greet == "" {
		greet = "220 fake.test ESMTP"
	}
	if !reply(greet) || !strings.HasPrefix(greet, "220") {
		return
	}
	ext := s.scr.Ext
	if ext == nil {
		ext = []string{"8BITMIME", "ENHANCEDSTATUSCODES", "PIPELINING"}
	}
	isTLS := false
	var cur *received
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		verb, _, _ := strings.Cut(line, " ")
		verb = strings.ToUpper(verb)
		if verb == "MAIL" || verb == "RCPT" {
			verb = strings.ToUpper(strings.SplitN(line, ":", 2)[0])
			verb = strings.Fields(verb)[0]
		}
		s.mu.Lock()
		s.cmds = append(s.cmds, line)
		s.mu.Unlock()
		if s.scr.Hang == verb {
			hang()
			return
		}
		custom, hasCustom := s.scr.Reply[verb]
		if hasCustom && verb != "DATA" && verb != "." {
			if !reply(custom) {
				return
			}
			if strings.HasPrefix(custom, "421") || verb == "QUIT" {
				return
			}
			if verb == "MAIL" || verb == "RSET" {
				cur = nil
			}
			continue
		}
		switch verb {
		case "EHLO":
			lines := append([]string{"fake.test"}, ext...)
			if isTLS {
				lines = removeString(lines, "STARTTLS")
			}
			for i, l := range lines {
				sep := "-"
				if i == len(lines)-1 {
					sep = " "
				}
				w.WriteString("250" + sep + l + "\r\n")
			}
			if w.Flush() != nil {
				return
			}
			cur = nil
		case "HELO":
			reply("250 fake.test")
			cur = nil
		case "STARTTLS":
			if s.scr.TLS == nil && !s.scr.BadTLS {
				reply("502 5.5.1 No TLS")
				continue
			}
			if !reply("220 2.0.0 Go ahead") {
				return
			}
			if s.scr.BadTLS {
				c.Write([]byte("this is not TLS\r\n"))
				return
			}
			tc := tls.Server(c, s.scr.TLS)
			if err := tc.Handshake(); err != nil {
				return
			}
			c = tc
			r = bufio.NewReader(tc)
			w = bufio.NewWriter(tc)
			isTLS = true
			cur = nil
		case "MAIL":
			cur = &received{From: strings.SplitN(line, ":", 2)[1], TLS: isTLS, ConnSeq: seq}
			reply("250 2.1.0 Ok")
		case "RCPT":
			if cur == nil {
				reply("503 5.5.1 MAIL first")
				continue
			}
			addr := strings.SplitN(line, ":", 2)[1]
			addr = strings.TrimPrefix(strings.Fields(addr)[0], "<")
			addr = strings.TrimSuffix(addr, ">")
			if rr, ok := s.scr.Rcpt[addr]; ok {
				reply(rr)
				if strings.HasPrefix(rr, "421") {
					return
				}
				continue
			}
			cur.Rcpts = append(cur.Rcpts, strings.SplitN(line, ":", 2)[1])
			reply("250 2.1.5 Ok")
		case "DATA":
			if hasCustom {
				reply(custom)
				if strings.HasPrefix(custom, "421") {
					return
				}
				continue
			}
			if cur == nil || len(cur.Rcpts) == 0 {
				reply("503 5.5.1 RCPT first")
				continue
			}
			reply("354 End data with <CR><LF>.<CR><LF>")
			if s.scr.StallInData {
				// Never read again, until the test ends.
				<-s.done
				return
			}
			var data strings.Builder
			first := true
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if first && s.scr.DropInData {
					return
				}
				first = false
				if l == ".\r\n" {
					break
				}
				data.WriteString(strings.TrimPrefix(l, "."))
			}
			s.mu.Lock()
			s.cmds = append(s.cmds, ".")
			s.mu.Unlock()
			if s.scr.Hang == "." {
				hang()
				return
			}
			if rr, ok := s.scr.Reply["."]; ok {
				reply(rr)
				cur = nil
				if strings.HasPrefix(rr, "421") {
					return
				}
				continue
			}
			cur.Data = data.String()
			s.mu.Lock()
			s.msgs = append(s.msgs, *cur)
			s.mu.Unlock()
			cur = nil
			reply("250 2.0.0 Ok: queued")
		case "RSET":
			cur = nil
			reply("250 2.0.0 Ok")
		case "NOOP":
			reply("250 2.0.0 Ok")
		case "QUIT":
			reply("221 2.0.0 Bye")
			return
		default:
			reply("502 5.5.2 Command not recognized")
		}
	}
}

func removeString(list []string, s string) []string {
	var out []string
	for _, l := range list {
		if l != s {
			out = append(out, l)
		}
	}
	return out
}

// listenSamePort starts one listener per address of ips on one common
// port chosen at random, so that MX hosts resolving to different loopback
// addresses are all reached through Options.Port. Linux routes the whole
// of 127.0.0.0/8 to the loopback interface.
func listenSamePort(t testing.TB, ips ...string) ([]net.Listener, int) {
	t.Helper()
	var lastErr error
	for range 50 {
		first, err := net.Listen("tcp", net.JoinHostPort(ips[0], "0"))
		if err != nil {
			t.Fatalf("listen: %v", err)
		}
		port := first.Addr().(*net.TCPAddr).Port
		lns := []net.Listener{first}
		ok := true
		for _, ip := range ips[1:] {
			ln, err := net.Listen("tcp", net.JoinHostPort(ip, fmt.Sprint(port)))
			if err != nil {
				lastErr = err
				ok = false
				break
			}
			lns = append(lns, ln)
		}
		if ok {
			return lns, port
		}
		for _, ln := range lns {
			ln.Close()
		}
	}
	t.Fatalf("no common free port: %v", lastErr)
	return nil, 0
}

// testCert returns a self-signed certificate for names (DNS names or IP
// addresses) and a pool that trusts it.
func testCert(t testing.TB, names ...string) (tls.Certificate, *x509.CertPool) {
	c := testutil.NewCert(t, testutil.CertOptions{Names: names})
	return c.Certificate, c.Pool
}
