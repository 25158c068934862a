package main

// Hostile input against the assembled server, over real sockets: every
// case says what the client is told, and checks on disk that nothing
// acknowledged is lost and nothing refused is stored. This file has the
// helpers and the SMTP side; hostile_imap_pop3_test.go the IMAP and POP3
// side.

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks/internal/testutil"
	"github.com/mailblocks/mailblocks/resolver/dnstest"
)

// rawConn is a line-oriented client that sends exactly the bytes it is
// given, for input no well-behaved client library would produce.
type rawConn struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dialRaw(t *testing.T, addr string, useTLS bool) *rawConn {
	t.Helper()
	var c net.Conn
	var err error
	if useTLS {
		c, err = tls.DialWithDialer(&net.Dialer{Timeout: waitFor}, "tcp", addr, insecureTLS)
	} else {
		c, err = net.DialTimeout("tcp", addr, waitFor)
	}
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	require.NoError(t, c.SetDeadline(time.Now().Add(waitFor)))
	return &rawConn{t: t, c: c, r: bufio.NewReader(c)}
}

func (rc *rawConn) send(s string) {
	rc.t.Helper()
	_, err := rc.c.Write([]byte(s))
	require.NoError(rc.t, err)
}

func (rc *rawConn) line() string {
	rc.t.Helper()
	l, err := rc.r.ReadString('\n')
	require.NoError(rc.t, err, "read after %q", l)
	return strings.TrimRight(l, "\r\n")
}

// smtpReply reads one (possibly multi-line) SMTP reply and returns its
// code and its last line.
func (rc *rawConn) smtpReply() (int, string) {
	rc.t.Helper()
	for {
		l := rc.line()
		require.GreaterOrEqual(rc.t, len(l), 3, "reply %q", l)
		if len(l) == 3 || l[3] == ' ' {
			code, err := strconv.Atoi(l[:3])
			require.NoError(rc.t, err, "reply %q", l)
			return code, l
		}
	}
}

// cmd sends one SMTP command and returns the reply.
func (rc *rawConn) cmd(s string) (int, string) {
	rc.t.Helper()
	rc.send(s + "\r\n")
	return rc.smtpReply()
}

// expect sends an SMTP command and requires a reply beginning with want
// (code and enhanced code).
func (rc *rawConn) expect(s, want string) {
	rc.t.Helper()
	_, l := rc.cmd(s)
	require.True(rc.t, strings.HasPrefix(l, want), "%q: got %q, want %s", s, l, want)
}

// dialMX opens an MX session up to EHLO.
func dialMX(t *testing.T, ts *testServer) *rawConn {
	t.Helper()
	rc := dialRaw(t, ts.Addr("smtp"), false)
	code, l := rc.smtpReply()
	require.Equal(t, 220, code, l)
	rc.expect("EHLO peer.test", "250")
	return rc
}

// data sends DATA, the given bytes and the final dot, and returns the
// reply to the dot.
func (rc *rawConn) data(msg string) string {
	rc.t.Helper()
	rc.expect("DATA", "354")
	if !strings.HasSuffix(msg, "\r\n") {
		msg += "\r\n"
	}
	rc.send(msg + ".\r\n")
	_, l := rc.smtpReply()
	return l
}

// storedMessages lists the message files of every maildir folder of the
// data directory (cur/ and new/), sorted.
func storedMessages(t *testing.T, dataDir string) []string {
	t.Helper()
	var out []string
	root := filepath.Join(dataDir, "store", "mail")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			if dir := filepath.Base(filepath.Dir(p)); dir == "cur" || dir == "new" {
				out = append(out, p)
			}
		}
		return nil
	})
	if !os.IsNotExist(err) {
		require.NoError(t, err)
	}
	sort.Strings(out)
	return out
}

// assertClean checks, once the server has stopped (so that every session
// has ended), that the spool and the maildirs' tmp/ directories hold no
// leftovers of refused or aborted messages.
func assertClean(t *testing.T, dataDir string) {
	t.Helper()
	left, err := filepath.Glob(filepath.Join(dataDir, "spool", "*"))
	require.NoError(t, err)
	assert.Empty(t, left, "spool leftovers")
	err = filepath.WalkDir(filepath.Join(dataDir, "store", "mail"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && filepath.Base(filepath.Dir(p)) == "tmp" {
			t.Errorf("maildir tmp leftover: %s", p)
		}
		return nil
	})
	if !os.IsNotExist(err) {
		require.NoError(t, err)
	}
}

// TestHostileSize: a message over -max-message-size is refused 552 5.3.4
// on the MX (announced with SIZE or found during DATA) and on submission;
// the session goes on and the next message is accepted; nothing of the
// refused ones is stored.
func TestHostileSize(t *testing.T) {
	ts := startServer(t, "", "-user", alice+":"+alicePass, "-max-message-size", "10000")
	big := message("bob@remote.test", alice, "too big", strings.Repeat("0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\r\n", 200))
	small := message("bob@remote.test", alice, "small enough", "fits")

	rc := dialMX(t, ts)
	rc.expect("MAIL FROM:<bob@remote.test> SIZE=20000", "552 5.3.4")
	rc.expect("MAIL FROM:<bob@remote.test>", "250")
	rc.expect("RCPT TO:<"+alice+">", "250")
	assert.True(t, strings.HasPrefix(rc.data(big), "552 5.3.4"))
	rc.expect("MAIL FROM:<bob@remote.test>", "250")
	rc.expect("RCPT TO:<"+alice+">", "250")
	assert.True(t, strings.HasPrefix(rc.data(small), "250"), "the session is usable after the refusal")
	// The same with BDAT (RFC 3030): a first chunk, then one that goes
	// over the limit.
	chunk := strings.Repeat(strings.Repeat("c", 98)+"\r\n", 60)
	rc.expect("MAIL FROM:<bob@remote.test>", "250")
	rc.expect("RCPT TO:<"+alice+">", "250")
	rc.send(fmt.Sprintf("BDAT %d\r\n%s", len(chunk), chunk))
	_, l := rc.smtpReply()
	require.True(t, strings.HasPrefix(l, "250"), l)
	rc.send(fmt.Sprintf("BDAT %d LAST\r\n%s", len(chunk), chunk))
	_, l = rc.smtpReply()
	assert.True(t, strings.HasPrefix(l, "552 5.3.4"), l)
	for range 3 {
		rc.expect("NOOP", "250")
	}
	rc.expect("QUIT", "221")

	err := submit(t, ts.Addr("submission"), alice, alicePass, alice, []string{alice}, big)
	var se *smtp.SMTPError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, 552, se.Code)
	assert.Equal(t, smtp.EnhancedCode{5, 3, 4}, se.EnhancedCode)
	require.NoError(t, submit(t, ts.Addr("submission"), alice, alicePass, alice, []string{alice}, small))

	got := waitIMAP(t, ts.Addr("imap"), alice, alicePass, "INBOX", 2)
	require.Len(t, got, 2)
	for _, m := range got {
		assert.Contains(t, m, "Subject: small enough")
	}
	ts.stop()
	assert.Len(t, storedMessages(t, ts.dataDir), 2)
	assertClean(t, ts.dataDir)
}

// TestHostileData: NUL bytes, bare LF, a 300 KB header and a mail loop are
// refused with their codes; 8-bit header text without SMTPUTF8 is
// accepted and stored byte for byte; a line over the line limit ends the
// session. Only the accepted messages are stored.
func TestHostileData(t *testing.T) {
	ts := startServer(t, "", "-user", alice+":"+alicePass)
	var bigHeader strings.Builder
	for i := 0; bigHeader.Len() < 300<<10; i++ {
		fmt.Fprintf(&bigHeader, "X-Filler-%d: %s\r\n", i, strings.Repeat("x", 90))
	}
	var loop strings.Builder
	for i := range 60 {
		fmt.Fprintf(&loop, "Received: from hop%d.test by hop%d.test; Mon, 23 Nov 2026 10:00:00 +0000\r\n", i, i+1)
	}
	eightBit := "From: <bob@remote.test>\r\nTo: <" + alice + ">\r\nSubject: Grüße aus Köln \xff\xfe\r\n\r\nbody\r\n"
	for _, tc := range []struct {
		name, msg, want string
	}{
		{"NUL", "Subject: nul\r\n\r\nbefore\x00after", "554 5.6.0"},
		{"bare LF", "Subject: bare lf\r\n\r\nline one\nline two", "550 5.5.2"},
		{"bare LF in header", "Subject: bare lf\nX: y\r\n\r\nbody", "550 5.5.2"},
		{"300 KB header", bigHeader.String() + "Subject: big header\r\n\r\nbody", "552 5.3.4"},
		{"60 Received", loop.String() + "Subject: loop\r\n\r\nbody", "554 5.4.6"},
		{"8-bit header", eightBit, "250"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := dialMX(t, ts)
			rc.expect("MAIL FROM:<bob@remote.test>", "250")
			rc.expect("RCPT TO:<"+alice+">", "250")
			got := rc.data(tc.msg)
			assert.True(t, strings.HasPrefix(got, tc.want), "got %q, want %s", got, tc.want)
			// The session is still usable.
			rc.expect("RSET", "250")
			rc.expect("QUIT", "221")
		})
	}

	// A line over the line length limit (2000) in DATA: 500 and the
	// session ends, as go-smtp cannot resynchronise.
	rc := dialMX(t, ts)
	rc.expect("MAIL FROM:<bob@remote.test>", "250")
	rc.expect("RCPT TO:<"+alice+">", "250")
	rc.expect("DATA", "354")
	rc.send("Subject: long line\r\n\r\n" + strings.Repeat("y", 5000) + "\r\n.\r\n")
	code, l := rc.smtpReply()
	assert.Equal(t, 500, code, l)

	// A hostile EHLO argument (8-bit, comment and quote characters, a
	// long name) reaches the Received header sanitised: ASCII, no
	// parentheses, no line longer than RFC 5322 2.1.1 allows.
	rc = dialRaw(t, ts.Addr("smtp"), false)
	code, l = rc.smtpReply()
	require.Equal(t, 220, code, l)
	rc.expect("EHLO h\xc3\xa9llo;(comment) \"quoted\" [1.2.3.4] "+strings.Repeat("z", 900), "250")
	rc.expect("MAIL FROM:<bob@remote.test>", "250")
	rc.expect("RCPT TO:<"+alice+">", "250")
	ehlo := message("bob@remote.test", alice, "hostile ehlo", "x")
	require.True(t, strings.HasPrefix(rc.data(ehlo), "250"))
	rc.expect("QUIT", "221")

	got := waitIMAP(t, ts.Addr("imap"), alice, alicePass, "INBOX", 2)
	require.Len(t, got, 2)
	assert.True(t, strings.HasSuffix(got[0], eightBit), "8-bit header stored unchanged:\n%q", got[0])
	received, _, _ := strings.Cut(got[1], "\r\nFrom: ")
	require.True(t, strings.HasPrefix(received, "Received: from "), got[1])
	for _, line := range strings.Split(received, "\r\n") {
		assert.LessOrEqual(t, len(line), 998, "line length")
		for _, r := range line {
			assert.True(t, r >= 0x20 && r < 0x7f || r == '\t', "character %q in %q", r, line)
		}
	}
	from, _, _ := strings.Cut(strings.TrimPrefix(received, "Received: from "), " (unknown")
	assert.NotContains(t, from, "(")
	assert.NotContains(t, from, ")")
	ts.stop()
	assert.Len(t, storedMessages(t, ts.dataDir), 2, "only the 8-bit and the EHLO messages are stored")
	assertClean(t, ts.dataDir)
}

// TestHostileInternational: a UTF-8 local part and an IDN domain. With
// SMTPUTF8 they are delivered; without it a non-ASCII address is refused
// 553 5.6.7 (RFC 6531 3.4). The A-label and the U-label of the domain
// reach the same mailbox.
func TestHostileInternational(t *testing.T) {
	const jose = "jösé@example.test"
	ts := startServer(t, "", "-domain", "example.test,bücher.test",
		"-user", alice+":"+alicePass, "-user", jose+":jose-secret", "-user", "user@bücher.test:user-secret")

	rc := dialMX(t, ts)
	rc.expect("MAIL FROM:<bob@remote.test>", "250")
	rc.expect("RCPT TO:<"+jose+">", "553 5.6.7")
	rc.expect("RCPT TO:<user@bücher.test>", "553 5.6.7")
	rc.expect("RSET", "250")
	rc.expect("MAIL FROM:<bob@remote.test> SMTPUTF8", "250")
	rc.expect("RCPT TO:<"+jose+">", "250")
	rc.expect("RCPT TO:<user@bücher.test>", "250")
	got := rc.data("From: <bob@remote.test>\r\nTo: <" + jose + ">, <user@bücher.test>\r\nSubject: utf8\r\n\r\nHola\r\n")
	require.True(t, strings.HasPrefix(got, "250"), got)
	rc.expect("MAIL FROM:<bob@remote.test>", "250")
	rc.expect("RCPT TO:<user@xn--bcher-kva.test>", "250")
	got = rc.data(message("bob@remote.test", "user@xn--bcher-kva.test", "a-label", "x"))
	require.True(t, strings.HasPrefix(got, "250"), got)
	rc.expect("QUIT", "221")

	joseMsgs := waitIMAP(t, ts.Addr("imap"), jose, "jose-secret", "INBOX", 1)
	assert.Contains(t, joseMsgs[0], "Subject: utf8")
	userMsgs := waitIMAP(t, ts.Addr("imap"), "user@xn--bcher-kva.test", "user-secret", "INBOX", 2)
	assert.Contains(t, userMsgs[0], "Subject: utf8")
	assert.Contains(t, userMsgs[1], "Subject: a-label")
	ts.stop()
	assert.Len(t, storedMessages(t, ts.dataDir), 3)
}

// TestHostileQuota: a user with a 20000-byte quota receives until full;
// then the message is refused 552 5.2.2 (at RCPT or at DATA), the
// messages accepted before are all there and complete, and no part of a
// refused message is stored.
func TestHostileQuota(t *testing.T) {
	const quotaUser = "q@example.test"
	ts := startServer(t, "", "-user", quotaUser+":q-secret:20000", "-user", "small@example.test:s-secret:3000",
		"-user", alice+":"+alicePass)

	// A message too big for one of two recipients, without SIZE: both
	// RCPTs pass, DATA is refused 552 5.2.2, and the other recipient
	// does not get a copy of a message its sender is told was refused.
	rc := dialMX(t, ts)
	rc.expect("MAIL FROM:<bob@remote.test>", "250")
	rc.expect("RCPT TO:<"+alice+">", "250")
	rc.expect("RCPT TO:<small@example.test>", "250")
	l := rc.data(message("bob@remote.test", alice, "too big for small", strings.Repeat(strings.Repeat("s", 73)+"\r\n", 60)))
	assert.True(t, strings.HasPrefix(l, "552 5.2.2"), l)
	rc.expect("QUIT", "221")
	require.Empty(t, storedMessages(t, ts.dataDir))

	var accepted []string
	var refusal string
	for i := 0; i < 20 && refusal == ""; i++ {
		msg := message("bob@remote.test", quotaUser, fmt.Sprintf("fill %d", i), strings.Repeat(strings.Repeat("z", 73)+"\r\n", 40))
		rc := dialMX(t, ts)
		rc.expect("MAIL FROM:<bob@remote.test>", "250")
		_, l := rc.cmd("RCPT TO:<" + quotaUser + ">")
		if strings.HasPrefix(l, "250") {
			l = rc.data(msg)
		}
		switch {
		case strings.HasPrefix(l, "250"):
			accepted = append(accepted, msg)
		case strings.HasPrefix(l, "552 5.2.2"):
			refusal = l
		default:
			t.Fatalf("message %d: unexpected reply %q", i, l)
		}
		rc.expect("QUIT", "221")
	}
	require.NotEmpty(t, refusal, "the quota was never reached")
	t.Logf("%d messages accepted, then %q", len(accepted), refusal)
	require.NotEmpty(t, accepted)
	assert.Less(t, len(accepted), 7, "20000 bytes hold at most six 3000-byte messages")

	// Once full, RCPT refuses at once.
	rc = dialMX(t, ts)
	rc.expect("MAIL FROM:<bob@remote.test> SIZE=3200", "250")
	rc.expect("RCPT TO:<"+quotaUser+">", "552 5.2.2")
	rc.expect("QUIT", "221")

	got := waitIMAP(t, ts.Addr("imap"), quotaUser, "q-secret", "INBOX", len(accepted))
	require.Len(t, got, len(accepted))
	total := 0
	for i, m := range got {
		assert.True(t, strings.HasSuffix(m, accepted[i]), "message %d complete", i)
		total += len(m)
	}
	assert.LessOrEqual(t, total, 20000)
	ts.stop()
	assert.Len(t, storedMessages(t, ts.dataDir), len(accepted))
	assertClean(t, ts.dataDir)
}

// TestHostileDisconnectMidData: a client that vanishes in the middle of
// DATA or of a BDAT chunk has not been told 250, so nothing may be stored (and nothing left
// in the spool); a client that vanishes after the 250 without QUIT keeps
// its message.
func TestHostileDisconnectMidData(t *testing.T) {
	ts := startServer(t, "", "-user", alice+":"+alicePass)
	rc := dialMX(t, ts)
	rc.expect("MAIL FROM:<bob@remote.test>", "250")
	rc.expect("RCPT TO:<"+alice+">", "250")
	rc.expect("DATA", "354")
	rc.send("Subject: cut\r\n\r\n" + strings.Repeat("half a message\r\n", 5000))
	require.NoError(t, rc.c.Close())

	// The same in the middle of a BDAT chunk, after a complete one.
	rc = dialMX(t, ts)
	rc.expect("MAIL FROM:<bob@remote.test>", "250")
	rc.expect("RCPT TO:<"+alice+">", "250")
	first := "Subject: cut bdat\r\n\r\nfirst chunk\r\n"
	rc.send(fmt.Sprintf("BDAT %d\r\n%s", len(first), first))
	code, reply := rc.smtpReply()
	require.Equal(t, 250, code, reply)
	rc.send("BDAT 100000 LAST\r\n" + strings.Repeat("second chunk\r\n", 1000))
	require.NoError(t, rc.c.Close())

	rc = dialMX(t, ts)
	rc.expect("MAIL FROM:<bob@remote.test>", "250")
	rc.expect("RCPT TO:<"+alice+">", "250")
	l := rc.data(message("bob@remote.test", alice, "acknowledged", "kept"))
	require.True(t, strings.HasPrefix(l, "250"), l)
	require.NoError(t, rc.c.Close()) // no QUIT

	ts.stop() // waits for both sessions to end
	files := storedMessages(t, ts.dataDir)
	require.Len(t, files, 1)
	b, err := os.ReadFile(files[0])
	require.NoError(t, err)
	assert.Contains(t, string(b), "Subject: acknowledged")
	assertClean(t, ts.dataDir)
}

// TestHostileConnectionFlood: 200 connections at once, 25 to each
// listener, held open until each has been greeted. The SMTP listeners
// (one smtpserver) let 50 in from one untrusted address and answer the
// others 421 4.7.0; IMAP and POP3 greet everyone. Afterwards a normal
// client is served on every protocol.
func TestHostileConnectionFlood(t *testing.T) {
	ts := startServer(t, "", "-user", alice+":"+alicePass, "-trusted-networks", "192.0.2.0/24")
	type result struct {
		svc, greeting string
		err           error
	}
	const perService = 25
	results := make(chan result, perService*len(services))
	conns := make(chan net.Conn, perService*len(services))
	for _, svc := range services {
		useTLS := svc == "submissions" || svc == "imaps" || svc == "pop3s"
		for range perService {
			go func() {
				d := &net.Dialer{Timeout: waitFor}
				var c net.Conn
				var err error
				if useTLS {
					c, err = tls.DialWithDialer(d, "tcp", ts.Addr(svc), insecureTLS)
				} else {
					c, err = d.Dial("tcp", ts.Addr(svc))
				}
				if err != nil {
					results <- result{svc: svc, err: err}
					return
				}
				conns <- c
				c.SetDeadline(time.Now().Add(waitFor))
				l, err := bufio.NewReader(c).ReadString('\n')
				results <- result{svc: svc, greeting: l, err: err}
			}()
		}
	}
	smtpOK, smtpRefused := 0, 0
	for range perService * len(services) {
		r := <-results
		require.NoError(t, r.err, r.svc)
		switch r.svc {
		case "imap", "imaps":
			assert.True(t, strings.HasPrefix(r.greeting, "* OK"), "%s: %q", r.svc, r.greeting)
		case "pop3", "pop3s":
			assert.True(t, strings.HasPrefix(r.greeting, "+OK"), "%s: %q", r.svc, r.greeting)
		default:
			switch {
			case strings.HasPrefix(r.greeting, "220 "):
				smtpOK++
			case strings.HasPrefix(r.greeting, "421 4.7.0"):
				smtpRefused++
			default:
				t.Errorf("%s: %q", r.svc, r.greeting)
			}
		}
	}
	assert.Equal(t, 50, smtpOK, "MaxConnectionsPerIP")
	assert.Equal(t, 4*perService-50, smtpRefused)
	close(conns)
	for c := range conns {
		c.Close()
	}

	// The server counts a connection until it has seen it close: retry
	// while the flood's are still being torn down.
	var err error
	require.Eventually(t, func() bool {
		err = sendMX(t, ts.Addr("smtp"), "bob@remote.test", []string{alice}, message("bob@remote.test", alice, "after the flood", "x"))
		return err == nil || !strings.Contains(err.Error(), "Too many connections")
	}, waitFor, 100*time.Millisecond)
	require.NoError(t, err)
	got := waitIMAP(t, ts.Addr("imap"), alice, alicePass, "INBOX", 1)
	assert.Contains(t, got[0], "Subject: after the flood")
	pop := pop3Raw(t, ts, alice, alicePass)
	pop.send("STAT\r\n")
	assert.True(t, strings.HasPrefix(pop.line(), "+OK 1 "))
}

// TestHostileWrongPasswords: wrong passwords and unknown users are refused
// alike (no user enumeration) on POP3, IMAP and submission; so is alice's
// password with an authorization identity of bob (SASL PLAIN, RFC 4616:
// no impersonation); the right password still works afterwards, on the
// same connection for IMAP and SMTP, on a new one for POP3, which closes
// the connection after three failures.
func TestHostileWrongPasswords(t *testing.T) {
	ts := startServer(t, "", "-user", alice+":"+alicePass, "-user", "bob@example.test:bob-secret")
	plain := func(authz, user, pass string) string {
		return base64.StdEncoding.EncodeToString([]byte(authz + "\x00" + user + "\x00" + pass))
	}
	impersonate := plain("bob@example.test", alice, alicePass)
	t.Run("POP3", func(t *testing.T) {
		t.Parallel()
		rc := dialRaw(t, ts.Addr("pop3s"), true)
		require.True(t, strings.HasPrefix(rc.line(), "+OK"))
		var refusals []string
		for _, up := range [][2]string{{alice, "wrong"}, {"nobody@example.test", "wrong"}} {
			rc.send("USER " + up[0] + "\r\n")
			require.True(t, strings.HasPrefix(rc.line(), "+OK"), "USER does not tell whether the user exists")
			rc.send("PASS " + up[1] + "\r\n")
			l := rc.line()
			require.True(t, strings.HasPrefix(l, "-ERR"), l)
			refusals = append(refusals, l)
		}
		assert.Equal(t, refusals[0], refusals[1])
		// The third failure ends the connection (MaxFailedLogins).
		rc.send("AUTH PLAIN " + impersonate + "\r\n")
		l := rc.line()
		require.True(t, strings.HasPrefix(l, "-ERR"), l)
		_, err := rc.r.ReadString('\n')
		require.ErrorIs(t, err, io.EOF, "closed after three failures")

		rc = dialRaw(t, ts.Addr("pop3s"), true)
		require.True(t, strings.HasPrefix(rc.line(), "+OK"))
		rc.send("USER " + alice + "\r\nPASS " + alicePass + "\r\n")
		require.True(t, strings.HasPrefix(rc.line(), "+OK"))
		l = rc.line()
		assert.True(t, strings.HasPrefix(l, "+OK"), l)
	})
	t.Run("IMAP", func(t *testing.T) {
		t.Parallel()
		rc := dialRaw(t, ts.Addr("imaps"), true)
		require.True(t, strings.HasPrefix(rc.line(), "* OK"))
		wrong := rc.imapCmd("a", "a LOGIN "+alice+" wrong\r\n")
		unknown := rc.imapCmd("b", "b LOGIN nobody@example.test wrong\r\n")
		assert.True(t, strings.HasPrefix(wrong, "NO"), wrong)
		assert.Equal(t, wrong, unknown)
		imp := rc.imapCmd("i", "i AUTHENTICATE PLAIN "+impersonate+"\r\n")
		assert.True(t, strings.HasPrefix(imp, "NO"), imp)
		ok := rc.imapCmd("c", "c LOGIN "+alice+" "+alicePass+"\r\n")
		assert.True(t, strings.HasPrefix(ok, "OK"), ok)
	})
	t.Run("submission", func(t *testing.T) {
		t.Parallel()
		rc := dialRaw(t, ts.Addr("submissions"), true)
		code, l := rc.smtpReply()
		require.Equal(t, 220, code, l)
		rc.expect("EHLO client.test", "250")
		_, wrong := rc.cmd("AUTH PLAIN " + plain("", alice, "wrong"))
		_, unknown := rc.cmd("AUTH PLAIN " + plain("", "nobody@example.test", "wrong"))
		assert.True(t, strings.HasPrefix(wrong, "535 5.7.8"), wrong)
		assert.Equal(t, wrong, unknown)
		rc.expect("AUTH PLAIN "+impersonate, "535 5.7.8")
		rc.expect("AUTH PLAIN "+plain("", alice, alicePass), "235 ")
		rc.expect("MAIL FROM:<bob@example.test>", "553 5.7.1")
	})
}

// TestHostileLMTPQuota: over LMTP each recipient has its own reply (RFC
// 2033 4.2): the one over quota gets 552 5.2.2, the other 250 and its
// copy.
func TestHostileLMTPQuota(t *testing.T) {
	ts := startServer(t, "", "-user", alice+":"+alicePass, "-user", "small@example.test:s-secret:3000")
	rc := dialRaw(t, ts.Addr("lmtp"), false)
	code, l := rc.smtpReply()
	require.Equal(t, 220, code, l)
	rc.expect("LHLO peer.test", "250")
	rc.expect("MAIL FROM:<bob@remote.test>", "250")
	rc.expect("RCPT TO:<"+alice+">", "250")
	rc.expect("RCPT TO:<small@example.test>", "250")
	rc.expect("DATA", "354")
	rc.send(message("bob@remote.test", alice, "lmtp", strings.Repeat(strings.Repeat("l", 73)+"\r\n", 60)) + ".\r\n")
	_, first := rc.smtpReply()
	_, second := rc.smtpReply()
	assert.True(t, strings.HasPrefix(first, "250 "), first)
	assert.Contains(t, first, alice)
	assert.True(t, strings.HasPrefix(second, "552 5.2.2"), second)
	assert.Contains(t, second, "small@example.test")
	rc.expect("QUIT", "221")
	got := waitIMAP(t, ts.Addr("imap"), alice, alicePass, "INBOX", 1)
	assert.Contains(t, got[0], "Subject: lmtp")
	ts.stop()
	assert.Len(t, storedMessages(t, ts.dataDir), 1)
	assertClean(t, ts.dataDir)
}

// TestHostileRemoteMX: a remote MX that answers the greeting with an
// endless multi-line reply must not make the server read (and keep in
// memory) more than a bounded amount: the client gives up and closes the
// connection, and the message stays queued.
func TestHostileRemoteMX(t *testing.T) {
	ln := testutil.Listen(t)
	dns := dnstest.NewServer(t,
		"evil.test. 300 IN MX 10 mx.evil.test.",
		"mx.evil.test. 300 IN A 127.0.0.1",
	)
	_, port := testutil.HostPort(t, ln.Addr().String())
	ts := startServer(t, "", "-user", alice+":"+alicePass, "-dns", dns.Addr(), "-outbound-port", port)

	written := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			written <- -1
			return
		}
		defer c.Close()
		// Bounded on this side too, so that a client that reads forever
		// fails the test instead of hanging it.
		c.SetWriteDeadline(time.Now().Add(waitFor))
		line := []byte("220-" + strings.Repeat("x", 500) + "\r\n")
		var n int64
		for n < 64<<20 {
			m, err := c.Write(line)
			n += int64(m)
			if err != nil {
				break
			}
		}
		written <- n
	}()
	require.NoError(t, submit(t, ts.Addr("submission"), alice, alicePass, alice, []string{"victim@evil.test"},
		message(alice, "victim@evil.test", "to a hostile MX", "x")))
	select {
	case n := <-written:
		require.Positive(t, n, "the MX was not contacted")
		assert.Less(t, n, int64(8<<20), "bytes the hostile MX could send before the client gave up")
	case <-time.After(2 * waitFor):
		t.Fatal("the hostile MX was not contacted")
	}
	// The failure is temporary: the message waits in the queue for its
	// next attempt.
	require.Eventually(t, func() bool {
		entries, err := ts.queue.List(context.Background())
		return err == nil && len(entries) == 1 && !entries[0].Delivering && entries[0].LastError != nil &&
			entries[0].LastError.Temporary()
	}, waitFor, 50*time.Millisecond, "the message is queued with a temporary failure")
}
