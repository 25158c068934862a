package smtpserver

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-message/textproto"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks"
	"github.com/mailblocks/mailblocks/internal/testutil"
	"github.com/mailblocks/mailblocks/store"
)

// lmtpRecorder answers per recipient: bob's mailbox is broken.
type lmtpRecorder struct{ *recorder }

func (r lmtpRecorder) HandleLMTP(ctx context.Context, env *mailblocks.Envelope, body io.Reader) []error {
	if err := r.recorder.Handle(ctx, env, body); err != nil {
		return []error{err}
	}
	errs := make([]error, len(env.Recipients))
	for i, rc := range env.Recipients {
		if rc.Address == "bob@example.org" {
			errs[i] = mailblocks.ErrMailboxFull
		}
	}
	return errs
}

func TestLMTP(t *testing.T) {
	rec := newRecorder()
	opts := testOptions(t, rec)
	opts.Handler = lmtpRecorder{rec}
	_, addr := start(t, opts, LMTP)
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	c := smtp.NewClientLMTP(conn)
	defer c.Close()
	require.NoError(t, c.Hello("mta.test"))
	require.NoError(t, c.Mail("a@remote.test", nil))
	require.NoError(t, c.Rcpt("alice@example.org", nil))
	require.NoError(t, c.Rcpt("bob@example.org", nil))
	err = c.Rcpt("x@remote.test", nil)
	var se *smtp.SMTPError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, 550, se.Code, "LMTP delivers only locally")
	w, err := c.Data()
	require.NoError(t, err)
	_, err = w.Write([]byte(simpleMsg))
	require.NoError(t, err)
	resp, err := w.CloseWithLMTPResponse()
	var lerr smtp.LMTPDataError
	require.ErrorAs(t, err, &lerr)
	require.Len(t, resp, 1)
	assert.Contains(t, resp, "alice@example.org")
	require.Len(t, lerr, 1)
	assert.Equal(t, 552, lerr["bob@example.org"].Code)
	m := rec.next(t)
	assert.Contains(t, m.body, "with LMTP id")

	// A plain Handler gives the same status to everybody.
	rec2 := newRecorder()
	opts.Handler = rec2
	_, addr = start(t, opts, LMTP)
	s := dial(t, addr)
	s.reply()
	s.expect("EHLO x", "500")
	s.write("LHLO mta.test\r\n")
	s.reply()
	s.expect("MAIL FROM:<a@remote.test>", "250")
	s.expect("RCPT TO:<alice@example.org>", "250")
	s.expect("RCPT TO:<bob@example.org>", "250")
	s.expect("DATA", "354")
	s.write(simpleMsg + ".\r\n")
	assert.True(t, strings.HasPrefix(s.reply()[0], "250"))
	assert.True(t, strings.HasPrefix(s.reply()[0], "250"))
	assert.Len(t, rec2.next(t).env.Recipients, 2)
}

func TestCheckers(t *testing.T) {
	rec := newRecorder()
	opts := testOptions(t, rec)
	var mu sync.Mutex
	var seen []string
	var events []Event
	opts.OnEvent = func(e Event) {
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
	}
	opts.Checkers = []Checker{
		&CheckFuncs{ID: "first",
			Connect: func(ctx context.Context, c ConnInfo) error {
				mu.Lock()
				seen = append(seen, "connect:"+c.Mode.String())
				mu.Unlock()
				return nil
			},
			Mail: func(ctx context.Context, env *mailblocks.Envelope) error {
				switch env.From {
				case "spammer@bad.test":
					return mailblocks.NewError(550, mailblocks.EnhancedCode{5, 7, 1}, "Go away")
				case "grey@grey.test":
					return mailblocks.NewError(450, mailblocks.EnhancedCode{4, 7, 1}, "Greylisted, try later")
				case "broken@x.test":
					return errors.New("dnsbl lookup: secret internal failure")
				}
				return nil
			},
			Rcpt: func(ctx context.Context, env *mailblocks.Envelope, r mailblocks.Recipient) error {
				if r.Address == "bob@example.org" {
					return mailblocks.NewError(550, mailblocks.EnhancedCode{5, 7, 1}, "Bob does not want mail")
				}
				return nil
			},
			Data: func(ctx context.Context, env *mailblocks.Envelope, h textproto.Header) (textproto.Header, error) {
				if strings.Contains(h.Get("Subject"), "viagra") {
					return textproto.Header{}, mailblocks.NewError(554, mailblocks.EnhancedCode{5, 7, 1}, "Spam")
				}
				var add textproto.Header
				add.Add("X-Spam-Score", "0.1")
				add.Add("Authentication-Results", "mx.test; spf=pass")
				return add, nil
			}},
		// A checker implementing only one interface.
		&CheckFuncs{ID: "second"},
	}
	s := greeted(t, opts, MX)
	s.expect("MAIL FROM:<spammer@bad.test>", "550 5.7.1 Go away")
	s.expect("MAIL FROM:<grey@grey.test>", "450 4.7.1")
	got := s.expect("MAIL FROM:<broken@x.test>", "451 4.3.0")
	assert.NotContains(t, got, "secret")
	s.expect("MAIL FROM:<ok@x.test>", "250")
	s.expect("RCPT TO:<bob@example.org>", "550 5.7.1 Bob")
	mu.Lock()
	require.NotEmpty(t, events)
	assert.Equal(t, "first", events[len(events)-1].Checker)
	assert.Equal(t, "rcpt", events[len(events)-1].Stage)
	mu.Unlock()
	s.expect("RCPT TO:<alice@example.org>", "250")
	assert.True(t, strings.HasPrefix(s.data("Subject: cheap viagra\r\n\r\nbuy\r\n"), "554 5.7.1 Spam"))
	s.expect("MAIL FROM:<ok@x.test>", "250")
	s.expect("RCPT TO:<alice@example.org>", "250")
	assert.True(t, strings.HasPrefix(s.data(simpleMsg), "250"))
	m := rec.next(t)
	// go-message's Header.Add puts the last field added on top.
	assert.True(t, strings.HasPrefix(m.body, "Authentication-Results: mx.test; spf=pass\r\nX-Spam-Score: 0.1\r\nReceived: from "), m.body)
	mu.Lock()
	assert.Equal(t, []string{"connect:mx"}, seen)
	mu.Unlock()
}

func TestConnectRejected(t *testing.T) {
	rec := newRecorder()
	opts := testOptions(t, rec)
	var events []Event
	var mu sync.Mutex
	opts.OnEvent = func(e Event) {
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
	}
	opts.Checkers = []Checker{&CheckFuncs{ID: "dnsbl", Connect: func(ctx context.Context, c ConnInfo) error {
		return mailblocks.NewError(554, mailblocks.EnhancedCode{5, 7, 1}, "Listed in a blocklist")
	}}}
	_, addr := start(t, opts, MX)
	s := dial(t, addr)
	assert.Equal(t, []string{"554 5.7.1 Listed in a blocklist"}, s.reply())
	assert.True(t, s.closed())
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, events, 1)
	assert.Equal(t, EventReject, events[0].Kind)
	assert.Equal(t, "connect", events[0].Stage)
	assert.Equal(t, "dnsbl", events[0].Checker)
	assert.Equal(t, 554, events[0].Code)
}

func TestMaxConnectionsPerIP(t *testing.T) {
	rec := newRecorder()
	opts := testOptions(t, rec)
	opts.MaxConnectionsPerIP = 2
	_, addr := start(t, opts, MX)
	a, b := dial(t, addr), dial(t, addr)
	a.greet()
	b.greet()
	c := dial(t, addr)
	assert.Equal(t, []string{"421 4.7.0 Too many connections from your address"}, c.reply())
	assert.True(t, c.closed())
	a.expect("QUIT", "221")
	require.True(t, a.closed())
	// The slot is freed when the session ends; the server may see the
	// close a little after the client, so retry until it does.
	require.Eventually(t, func() bool {
		d := dial(t, addr)
		return strings.HasPrefix(d.reply()[0], "220")
	}, 10*time.Second, 10*time.Millisecond)

	// Trusted networks are exempt.
	opts.TrustedNetworks = parsePrefixes("127.0.0.0/8")
	opts.MaxConnectionsPerIP = 1
	_, addr = start(t, opts, MX)
	dial(t, addr).greet()
	dial(t, addr).greet()
}

func TestMessageRateLimit(t *testing.T) {
	rec := newRecorder()
	clk := testutil.NewClock(time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC))
	opts := testOptions(t, rec)
	opts.Now = clk.Now
	opts.MaxMessagesPerMinute = 3
	_, addr := start(t, opts, MX)
	s := dial(t, addr)
	s.greet()
	for range 3 {
		s.expect("MAIL FROM:<a@remote.test>", "250")
		s.expect("RSET", "250")
	}
	s.expect("MAIL FROM:<a@remote.test>", "421 4.7.0")
	assert.True(t, s.closed())
	clk.Advance(59 * time.Second)
	s = dial(t, addr)
	s.greet()
	s.expect("MAIL FROM:<a@remote.test>", "421 4.7.0")
	clk.Advance(time.Second)
	s = dial(t, addr)
	s.greet()
	s.expect("MAIL FROM:<a@remote.test>", "250")
}

func TestAuthLockout(t *testing.T) {
	rec := newRecorder()
	clk := testutil.NewClock(time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC))
	opts := testOptions(t, rec)
	opts.Now = clk.Now
	opts.AllowInsecureAuth = true
	opts.MaxAuthFailures = 3
	opts.AuthLockout = 10 * time.Minute
	var mu sync.Mutex
	failures := 0
	opts.OnEvent = func(e Event) {
		if e.Kind == EventAuthFailure {
			mu.Lock()
			failures++
			mu.Unlock()
		}
	}
	_, addr := start(t, opts, Submission)
	bad := "AUTH PLAIN AGFsaWNlQGV4YW1wbGUub3JnAHdyb25n"      // alice / wrong
	good := "AUTH PLAIN AGFsaWNlQGV4YW1wbGUub3JnAHNlY3JldA==" // alice / secret
	s := dial(t, addr)
	s.greet()
	for range 3 {
		s.expect(bad, "535 5.7.8")
	}
	// Locked: even the right password is refused, from any connection.
	s.expect(good, "454 4.7.0")
	s2 := dial(t, addr)
	s2.greet()
	s2.expect(good, "454 4.7.0")
	clk.Advance(10 * time.Minute)
	s2.expect(good, "235")
	mu.Lock()
	assert.Equal(t, 3, failures)
	mu.Unlock()
}

func TestAuthFailureDelay(t *testing.T) {
	// The delay is cut short when the server closes: Close must not wait
	// for it.
	rec := newRecorder()
	opts := testOptions(t, rec)
	opts.AllowInsecureAuth = true
	opts.AuthFailureDelay = time.Hour
	srv, addr := start(t, opts, Submission)
	s := dial(t, addr)
	s.greet()
	s.write("AUTH PLAIN AGFsaWNlQGV4YW1wbGUub3JnAHdyb25n\r\n")
	// Wait until the server is inside the delay: the failure event fires
	// before it.
	require.Eventually(t, func() bool {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		for c := range srv.conns {
			if c.authFailures.Load() > 0 {
				return true
			}
		}
		return false
	}, 10*time.Second, 5*time.Millisecond)
	done := make(chan struct{})
	go func() {
		srv.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close blocked by the auth delay")
	}
	// At most the 535 reply, then the end.
	_, err := io.ReadAll(s.r)
	require.NoError(t, err)
}

func TestSlowClient(t *testing.T) {
	// A client trickling its message one byte at a time hits the data
	// deadline: 421, connection closed, nothing delivered.
	rec := newRecorder()
	opts := testOptions(t, rec)
	opts.DataTimeout = time.Second
	opts.MinDataRate = 1000
	s := greeted(t, opts, MX)
	s.expect("MAIL FROM:<a@remote.test>", "250")
	s.expect("RCPT TO:<alice@example.org>", "250")
	s.expect("DATA", "354")
	deadline := time.Now().Add(20 * time.Second)
	var reply string
	for i := 0; time.Now().Before(deadline); i++ {
		if _, err := s.conn.Write([]byte{"Subject: slow\r\n\r\nbody"[i%20]}); err != nil {
			break
		}
		s.conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		line, err := s.r.ReadString('\n')
		if err == nil {
			reply = line
			break
		}
	}
	assert.True(t, strings.HasPrefix(reply, "421 4.4.2"), "got %q", reply)
	s.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	assert.True(t, s.closed())
	assert.Equal(t, 0, rec.count())
}

func TestCommandTimeout(t *testing.T) {
	rec := newRecorder()
	opts := testOptions(t, rec)
	opts.CommandTimeout = 300 * time.Millisecond
	s := greeted(t, opts, MX)
	assert.True(t, strings.HasPrefix(s.reply()[0], "421 4.4.2"))
	assert.True(t, s.closed())
}

// filler is 7 KB of message body in short lines.
var filler = strings.Repeat(strings.Repeat("f", 68)+"\r\n", 100)

// blockingHandler signals when it starts reading and reports how it ended.
type blockingHandler struct {
	started chan struct{}
	result  chan error
}

func (h *blockingHandler) Handle(ctx context.Context, env *mailblocks.Envelope, body io.Reader) error {
	close(h.started)
	_, err := io.Copy(io.Discard, body)
	h.result <- err
	return err
}

func TestDisconnectMidData(t *testing.T) {
	h := &blockingHandler{started: make(chan struct{}), result: make(chan error, 1)}
	opts := testOptions(t, nil)
	opts.Handler = h
	s := greeted(t, opts, MX)
	s.expect("MAIL FROM:<a@remote.test>", "250")
	s.expect("RCPT TO:<alice@example.org>", "250")
	s.expect("DATA", "354")
	// More than go-smtp's 4 KiB read block, so that the handler runs.
	s.write("Subject: cut\r\n\r\n" + filler + "half a mess")
	<-h.started
	s.conn.Close()
	select {
	case err := <-h.result:
		require.Error(t, err, "the handler sees a read error, so it commits nothing")
		assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
	case <-time.After(10 * time.Second):
		t.Fatal("handler not released")
	}
}

func TestHandlerGetsCompleteMessageOnly(t *testing.T) {
	// A handler that stops reading early and returns nil: the server still
	// checks the rest and refuses a bad message.
	rec := newRecorder()
	opts := testOptions(t, rec)
	opts.Handler = HandlerFunc(func(ctx context.Context, env *mailblocks.Envelope, body io.Reader) error {
		buf := make([]byte, 10)
		body.Read(buf)
		return nil
	})
	s := greeted(t, opts, MX)
	s.expect("MAIL FROM:<a@remote.test>", "250")
	s.expect("RCPT TO:<alice@example.org>", "250")
	assert.True(t, strings.HasPrefix(s.data("Subject: x\r\n\r\n"+filler+"\nbare\r\n"), "550 5.5.2"))
}

func TestConcurrentConnections(t *testing.T) {
	rec := newRecorder()
	opts := testOptions(t, rec)
	opts.MaxConnectionsPerIP = 2000
	opts.Logger = nil
	_, addr := start(t, opts, MX)
	const n = 1000
	var wg sync.WaitGroup
	errs := make(chan error, n)
	ready := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := smtp.Dial(addr)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			if err := c.Hello("client.test"); err != nil {
				errs <- err
				return
			}
			<-ready // all connections open at once
			msg := strings.Replace(simpleMsg, "hi", "hi "+string(rune('a'+i%26)), 1)
			if err := c.SendMail("a@remote.test", []string{"alice@example.org"}, strings.NewReader(msg)); err != nil {
				errs <- err
				return
			}
			errs <- c.Quit()
		}()
	}
	// Wait until every client has opened its session.
	require.Eventually(t, func() bool {
		return openSessions(addr) >= n || len(errs) > 0
	}, 60*time.Second, 20*time.Millisecond)
	close(ready)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	assert.Equal(t, n, rec.count())
}

func TestShutdown(t *testing.T) {
	h := &blockingHandler{started: make(chan struct{}), result: make(chan error, 1)}
	opts := testOptions(t, nil)
	opts.Handler = h
	srv, addr := start(t, opts, MX)
	idle := dial(t, addr)
	idle.greet()
	busy := dial(t, addr)
	busy.greet()
	busy.expect("MAIL FROM:<a@remote.test>", "250")
	busy.expect("RCPT TO:<alice@example.org>", "250")
	busy.expect("DATA", "354")
	busy.write("Subject: x\r\n\r\n" + filler)
	<-h.started

	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(context.Background()) }()
	// The idle session is ended at once.
	assert.True(t, strings.HasPrefix(idle.reply()[0], "421"))
	assert.True(t, idle.closed())
	// New connections are refused.
	require.Eventually(t, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err != nil
	}, 10*time.Second, 10*time.Millisecond)
	// The transfer in progress completes and gets its 250.
	busy.write("body\r\n.\r\n")
	assert.True(t, strings.HasPrefix(busy.reply()[0], "250"))
	require.NoError(t, <-h.result)
	// Then the session ends.
	assert.True(t, strings.HasPrefix(busy.reply()[0], "421"))
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown did not return")
	}
}

// traceBuf is a session trace that records whether the server closed it.
type traceBuf struct {
	testutil.Buffer
	closed atomic.Bool
}

func (b *traceBuf) Close() error {
	b.closed.Store(true)
	return nil
}

func TestTraceAndLogs(t *testing.T) {
	rec := newRecorder()
	opts := testOptions(t, rec)
	var logs testutil.Buffer
	opts.Logger = newJSONLogger(&logs)
	traces := map[string]*traceBuf{}
	var mu sync.Mutex
	opts.Trace = func(session string, remote net.Addr) io.Writer {
		mu.Lock()
		defer mu.Unlock()
		tb := &traceBuf{}
		traces[session] = tb
		return tb
	}
	_, addr := start(t, opts, MX)
	c, err := smtp.DialStartTLS(addr, clientTLS())
	require.NoError(t, err)
	require.NoError(t, c.SendMail("a@remote.test", []string{"alice@example.org"}, strings.NewReader(simpleMsg)))
	require.NoError(t, c.Quit())
	m := rec.next(t)
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, tb := range traces {
			if tb.closed.Load() {
				return true
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond)
	mu.Lock()
	require.Len(t, traces, 1)
	for session, tb := range traces {
		tr := tb.String()
		assert.Contains(t, tr, "STARTTLS")
		assert.Contains(t, tr, "MAIL FROM:<a@remote.test>", "trace is in clear text after STARTTLS")
		assert.Contains(t, tr, "Subject: hi")
		// Every log line carries the session.
		lines := logs.Lines()
		require.NotEmpty(t, lines)
		for _, l := range lines {
			assert.Contains(t, l, `"session":"`+session+`"`)
		}
		assert.Contains(t, strings.Join(lines, "\n"), m.env.ID)
	}
	mu.Unlock()
}

// dkimLike is a BodyChecker that needs the whole message.
type dkimLike struct{ seen chan string }

func (dkimLike) Name() string { return "body" }

func (d dkimLike) CheckBody(ctx context.Context, env *mailblocks.Envelope, h textproto.Header, msg *io.SectionReader) (textproto.Header, error) {
	b, err := io.ReadAll(msg)
	if err != nil {
		return textproto.Header{}, err
	}
	d.seen <- string(b)
	if strings.Contains(string(b), "EICAR") {
		return textproto.Header{}, mailblocks.NewError(554, mailblocks.EnhancedCode{5, 7, 1}, "Virus found")
	}
	var add textproto.Header
	add.Add("X-Body-Size", strconv.FormatInt(msg.Size(), 10))
	return add, nil
}

func TestBodyChecker(t *testing.T) {
	rec := newRecorder()
	opts := testOptions(t, rec)
	opts.TempDir = t.TempDir()
	d := dkimLike{seen: make(chan string, 2)}
	opts.Checkers = []Checker{d}
	_, addr := start(t, opts, Submission)
	c, err := smtp.DialStartTLS(addr, clientTLS())
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Auth(sasl.NewPlainClient("", "alice@example.org", "secret")))
	msg := "Subject: x\r\n\r\n" + filler
	require.NoError(t, c.SendMail("alice@example.org", []string{"bob@example.org"}, strings.NewReader(msg)))
	assert.Equal(t, msg, <-d.seen, "the checker sees the message as sent")
	m := rec.next(t)
	assert.True(t, strings.HasPrefix(m.body, "X-Body-Size: "+strconv.Itoa(len(msg))+"\r\nReceived: "), m.body[:100])
	assert.True(t, strings.HasSuffix(m.body, "Subject: x\r\nMessage-ID: <"+m.env.ID+"@mx.test>\r\nDate: "+m.env.Received.Format(time.RFC1123Z)+"\r\n\r\n"+filler))

	err = c.SendMail("alice@example.org", []string{"bob@example.org"}, strings.NewReader("Subject: y\r\n\r\nEICAR\r\n"))
	var se *smtp.SMTPError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, 554, se.Code)
	<-d.seen
	entries, err := os.ReadDir(opts.TempDir)
	require.NoError(t, err)
	assert.Empty(t, entries, "spool files are unlinked")
}

// allFail refuses every recipient of an LMTP delivery.
type allFail struct{ *recorder }

func (a allFail) HandleLMTP(ctx context.Context, env *mailblocks.Envelope, body io.Reader) []error {
	io.Copy(io.Discard, body)
	errs := make([]error, len(env.Recipients))
	for i := range errs {
		errs[i] = mailblocks.ErrMailboxFull
	}
	errs[0] = mailblocks.NewError(421, mailblocks.EnhancedCode{4, 3, 0}, "Store going down")
	return errs
}

func TestLMTPStatusesAllWritten(t *testing.T) {
	// Per-recipient failures neither hit MaxErrors nor cut the replies.
	opts := testOptions(t, nil)
	opts.Handler = allFail{newRecorder()}
	opts.MaxErrors = 2
	_, addr := start(t, opts, LMTP)
	s := dial(t, addr)
	s.reply()
	s.write("LHLO mta.test\r\n")
	s.reply()
	s.expect("MAIL FROM:<a@remote.test>", "250")
	rcpts := []string{"alice@example.org", "bob@example.org", "team@example.org", "postmaster@example.org"}
	for _, r := range rcpts {
		s.expect("RCPT TO:<"+r+">", "250")
	}
	s.expect("DATA", "354")
	s.write(simpleMsg + ".\r\n")
	assert.True(t, strings.HasPrefix(s.reply()[0], "421 4.3.0"))
	for range rcpts[1:] {
		assert.True(t, strings.HasPrefix(s.reply()[0], "552 5.2.2"))
	}
	s.expect("NOOP", "250")
}

// authFunc is an Authenticator made of a function.
type authFunc func(ctx context.Context, user, pass string) (string, error)

func (f authFunc) Authenticate(ctx context.Context, user, pass string) (string, error) {
	return f(ctx, user, pass)
}

func TestAuthTemporaryFailure(t *testing.T) {
	// An Authenticator that cannot answer now (a 4xx *mailblocks.Error or
	// an unclassified error) gets a temporary reply, and the attempt does
	// not count as a failure towards the lockout; a 5xx is bad
	// credentials.
	tests := []struct {
		name    string
		err     error
		want    string
		failure bool
	}{
		{"temporary reply", &mailblocks.Error{Code: 454, Enhanced: mailblocks.EnhancedCode{4, 7, 0}, Message: "Try later"}, "454 4.7.0", false},
		{"unclassified", errors.New("database down"), "451 4.3.0", false},
		{"bad credentials", store.ErrAuthFailed, "535 5.7.8", true},
		{"permanent reply", mailblocks.ErrAuthFailed.WithMessage("No"), "535 5.7.8", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := testOptions(t, newRecorder())
			opts.AllowInsecureAuth = true
			opts.MaxAuthFailures = 1
			opts.Authenticator = authFunc(func(context.Context, string, string) (string, error) { return "", tt.err })
			var mu sync.Mutex
			failures := 0
			opts.OnEvent = func(e Event) {
				if e.Kind == EventAuthFailure {
					mu.Lock()
					failures++
					mu.Unlock()
				}
			}
			_, addr := start(t, opts, Submission)
			s := dial(t, addr)
			s.greet()
			s.expect("AUTH PLAIN AGFsaWNlQGV4YW1wbGUub3JnAHNlY3JldA==", tt.want)
			mu.Lock()
			defer mu.Unlock()
			if tt.failure {
				assert.Equal(t, 1, failures)
			} else {
				assert.Zero(t, failures)
			}
		})
	}
}
