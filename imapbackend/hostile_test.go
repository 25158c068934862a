package imapbackend

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Hostile-client tests: raw transcripts a broken or malicious client
// could send. Each checks the class of the tagged reply, that the server
// still serves a normal client afterwards, that nothing is lost or
// half-applied, and that the connection's goroutines end.

// hostileRaw dials and reads the greeting; the connection deadline is
// generous and absolute.
func hostileRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	rc := &rawConn{t: t, c: c, br: bufio.NewReaderSize(c, 64<<10)}
	require.True(t, strings.HasPrefix(rc.line(), "* OK"))
	return rc
}

// write sends raw bytes.
func (rc *rawConn) write(s string) {
	rc.t.Helper()
	_, err := io.WriteString(rc.c, s)
	require.NoError(rc.t, err)
}

// tagged reads lines up to the reply tagged tag and returns the untagged
// lines and the tagged reply without its tag.
func (rc *rawConn) tagged(tag string) ([]string, string) {
	rc.t.Helper()
	var untagged []string
	for {
		l := rc.line()
		if strings.HasPrefix(l, tag+" ") {
			return untagged, strings.TrimPrefix(l, tag+" ")
		}
		untagged = append(untagged, l)
	}
}

// do sends "tag line" and returns the untagged lines and the tagged reply.
func (rc *rawConn) do(tag, line string) ([]string, string) {
	rc.t.Helper()
	rc.write(tag + " " + line + "\r\n")
	return rc.tagged(tag)
}

// want sends a command and checks that the tagged reply starts with want
// ("OK", "NO [TRYCREATE]", "BAD"...).
func (rc *rawConn) want(want, line string) []string {
	rc.t.Helper()
	rc.tag++
	tag := fmt.Sprintf("H%d", rc.tag)
	un, got := rc.do(tag, line)
	require.True(rc.t, strings.HasPrefix(got, want+" ") || got == want, "%s: got %q, want %s", line, got, want)
	return un
}

// readToEOF reads until the server closes and returns what came.
func (rc *rawConn) readToEOF() string {
	rc.t.Helper()
	rc.c.SetReadDeadline(time.Now().Add(waitFor))
	b, err := io.ReadAll(rc.br)
	if err != nil {
		// A reset after the server closed with unread input is a close.
		var ne net.Error
		require.False(rc.t, errors.As(err, &ne) && ne.Timeout(), "server did not close: %v", err)
	}
	return string(b)
}

func (rc *rawConn) login() {
	rc.t.Helper()
	rc.want("OK", fmt.Sprintf(`LOGIN %s "%s"`, testUser, testPass))
}

// goroutines returns a function that waits until the number of
// goroutines is back to what it is now, with a little slack for the
// runtime's own.
func goroutines(t *testing.T) func() {
	t.Helper()
	base := runtime.NumGoroutine()
	return func() {
		t.Helper()
		var n int
		ok := assert.Eventually(t, func() bool {
			n = runtime.NumGoroutine()
			return n <= base+3
		}, waitFor, 20*time.Millisecond)
		if !ok {
			buf := make([]byte, 1<<20)
			t.Logf("%d goroutines, %d before:\n%s", n, base, buf[:runtime.Stack(buf, true)])
		}
	}
}

// stillServes checks that a normal client can log in and sees n messages
// in folder.
func stillServes(t *testing.T, ts *testServer, folder string, n uint32) {
	t.Helper()
	c := ts.dial(t, nil)
	st, err := c.Status(folder, &imap.StatusOptions{NumMessages: true}).Wait()
	require.NoError(t, err)
	assert.Equal(t, n, *st.NumMessages, "messages in %s", folder)
	require.NoError(t, c.Logout().Wait())
}

func TestHostileLiterals(t *testing.T) {
	forEachStoreOpts(t, Options{InsecureAuth: true, AppendLimit: 1024}, func(t *testing.T, ts *testServer) {
		leak := goroutines(t)
		rc := hostileRaw(t, ts.addr)
		// Before login, literals in LOGIN are refused above 4096 octets
		// without a continuation request. (go-imap beta.8 drops its NO
		// [TOOBIG] and takes the next line for the rest of the LOGIN
		// command, which then fails: the next command is lost, but
		// nothing is read into memory and the session goes on.)
		for _, lit := range []string{"{4294967296}", "{99999999999999999}", "{5000}"} {
			rc.write("L1 LOGIN " + lit + "\r\nL2 NOOP\r\nL3 NOOP\r\n")
			un, got := rc.tagged("L1")
			assert.True(t, strings.HasPrefix(got, "NO "), "LOGIN %s: %q", lit, got)
			for _, l := range un {
				assert.False(t, strings.HasPrefix(l, "+"), "continuation for LOGIN %s", lit)
			}
			_, got = rc.tagged("L3")
			assert.True(t, strings.HasPrefix(got, "OK "), got)
		}
		rc.login()
		rc.want("NO [TOOBIG]", "APPEND INBOX {4294967296}")
		rc.want("NO [TOOBIG]", "APPEND INBOX {1025}")
		rc.want("NO [TOOBIG]", "APPEND INBOX {99999999999999999+}")
		rc.want("NO [TOOBIG]", "APPEND INBOX (\\Seen) {4294967296}")
		// Exactly at the limit: accepted.
		rc.write("A1 APPEND INBOX {1024}\r\n")
		require.True(t, strings.HasPrefix(rc.line(), "+"))
		rc.write("Subject: x\r\n\r\n" + strings.Repeat("z", 1024-len("Subject: x\r\n\r\n")) + "\r\n")
		_, ok := rc.tagged("A1")
		require.True(t, strings.HasPrefix(ok, "OK [APPENDUID "), ok)
		rc.want("OK", "NOOP")
		rc.want("OK", "LOGOUT")
		stillServes(t, ts, "INBOX", 1)
		leak()
	})
}

// forEachStoreOpts is forEachStore with options.
func forEachStoreOpts(t *testing.T, opts Options, f func(t *testing.T, ts *testServer)) {
	for _, kind := range []struct {
		name string
		new  func(testing.TB) testStore
	}{{"memstore", newTestStore}, {"maildir", newMaildirStore}} {
		t.Run(kind.name, func(t *testing.T) {
			f(t, newTestServerStore(t, kind.new(t), opts))
		})
	}
}

// TestHostileUnterminatedLiteral: APPEND announcing a literal, part of it,
// then the client goes away: nothing stored, nothing left running.
func TestHostileUnterminatedLiteral(t *testing.T) {
	forEachStoreOpts(t, Options{InsecureAuth: true}, func(t *testing.T, ts *testServer) {
		leak := goroutines(t)
		for _, part := range []string{"", "Subject: cut\r\n", "Subject: cut\r\n\r\n" + strings.Repeat("q", 5000)} {
			rc := hostileRaw(t, ts.addr)
			rc.login()
			rc.write("A APPEND INBOX {100000}\r\n")
			require.True(t, strings.HasPrefix(rc.line(), "+"))
			rc.write(part)
			rc.c.Close()
		}
		leak()
		stillServes(t, ts, "INBOX", 0)
	})
}

func TestHostilePipelined10000(t *testing.T) {
	ts := newTestServer(t, Options{InsecureAuth: true})
	ts.deliver(t, "INBOX", msgPlain)
	rc := hostileRaw(t, ts.addr)
	rc.login()
	rc.want("OK", "SELECT INBOX")
	const n = 10000
	var b strings.Builder
	for i := range n {
		switch i % 3 {
		case 0:
			fmt.Fprintf(&b, "P%d NOOP\r\n", i)
		case 1:
			fmt.Fprintf(&b, "P%d UID FETCH 1 (FLAGS)\r\n", i)
		case 2:
			fmt.Fprintf(&b, "P%d STORE 1 BOGUS\r\n", i)
		}
	}
	werr := make(chan error, 1)
	go func() {
		_, err := io.WriteString(rc.c, b.String())
		werr <- err
	}()
	for i := range n {
		_, got := rc.tagged(fmt.Sprintf("P%d", i))
		want := [...]string{"OK", "OK", "BAD"}[i%3]
		require.True(t, strings.HasPrefix(got, want+" "), "command %d: %q", i, got)
	}
	require.NoError(t, <-werr)
	rc.want("OK", "LOGOUT")
	stillServes(t, ts, "INBOX", 1)
}

// TestHostileLongLine: a line of 1 MB without CRLF ends the connection
// (go-imap reads at most 50 KiB of a command) and nothing else.
func TestHostileLongLine(t *testing.T) {
	ts := newTestServer(t, Options{InsecureAuth: true})
	leak := goroutines(t)
	for _, login := range []bool{false, true} {
		rc := hostileRaw(t, ts.addr)
		if login {
			rc.login()
		}
		go func() {
			// The server stops reading: the write may fail.
			io.WriteString(rc.c, "L1 NOOP "+strings.Repeat("x", 1<<20))
		}()
		rest := rc.readToEOF()
		assert.NotContains(t, rest, "L1 OK")
		rc.c.Close()
	}
	leak()
	stillServes(t, ts, "INBOX", 0)
}

// TestHostileConcurrentExpunge: session B flags and expunges while A
// fetches 1:* in a loop; every FETCH response A sees pairs a sequence
// number with the right UID and that UID with its own message.
func TestHostileConcurrentExpunge(t *testing.T) {
	forEachStoreOpts(t, Options{InsecureAuth: true}, func(t *testing.T, ts *testServer) {
		const n = 60
		subj := map[uint32]string{}
		for i := range n {
			s := fmt.Sprintf("m%d", i)
			uid := ts.deliver(t, "INBOX", crlf("Subject: "+s+"\n\nx\n"))
			subj[uint32(uid)] = s
		}
		a := hostileRaw(t, ts.addr)
		a.login()
		a.want("OK", "SELECT INBOX")
		// A's view: sequence number i+1 is uids[i], updated from the
		// EXPUNGE and EXISTS responses it is sent.
		view := make([]uint32, 0, n)
		for uid := range subj {
			view = append(view, uid)
		}
		sortU32(view)

		b := ts.dial(t, nil)
		_, err := b.Select("INBOX", nil).Wait()
		require.NoError(t, err)
		done := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(done)
			for i := 0; i < n; i += 3 {
				var set imap.UIDSet
				set.AddNum(imap.UID(view[i]), imap.UID(view[i+1]))
				if !assert.NoError(t, b.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}, Silent: true}, nil).Close()) {
					return
				}
				if !assert.NoError(t, b.UIDExpunge(set).Close()) {
					return
				}
			}
		}()

		fetches := 0
		run := func(cmd string) {
			a.tag++
			tag := fmt.Sprintf("F%d", a.tag)
			a.write(tag + " " + cmd + "\r\n")
			for {
				l := a.line()
				if strings.HasPrefix(l, tag+" ") {
					require.True(t, strings.HasPrefix(l, tag+" OK "), l)
					break
				}
				var num, uid uint32
				var size int
				switch {
				case strings.HasSuffix(l, " EXPUNGE"):
					_, err := fmt.Sscanf(l, "* %d EXPUNGE", &num)
					require.NoError(t, err, l)
					require.True(t, num >= 1 && int(num) <= len(view), l)
					view = append(view[:num-1], view[num:]...)
				case strings.HasSuffix(l, " EXISTS"):
					_, err := fmt.Sscanf(l, "* %d EXISTS", &num)
					require.NoError(t, err, l)
					require.Equal(t, len(view), int(num), "EXISTS after EXPUNGEs")
				case strings.Contains(l, " FETCH (UID ") && strings.Contains(l, "BODY["):
					_, err := fmt.Sscanf(l, "* %d FETCH (UID %d BODY[HEADER.FIELDS (\"SUBJECT\")] {%d}", &num, &uid, &size)
					require.NoError(t, err, l)
					body := make([]byte, size)
					_, err = io.ReadFull(a.br, body)
					require.NoError(t, err)
					require.Equal(t, ")", a.line())
					require.True(t, num >= 1 && int(num) <= len(view), "seq %d beyond view %d", num, len(view))
					require.Equal(t, view[num-1], uid, "seq %d", num)
					require.Equal(t, "Subject: "+subj[uid]+"\r\n\r\n", string(body), "uid %d", uid)
				case strings.Contains(l, " FETCH (UID "):
					// An unsolicited FLAGS update.
					_, err := fmt.Sscanf(l, "* %d FETCH (UID %d FLAGS", &num, &uid)
					require.NoError(t, err, l)
					require.True(t, num >= 1 && int(num) <= len(view), "seq %d beyond view %d", num, len(view))
					require.Equal(t, view[num-1], uid, "seq %d", num)
				default:
					t.Fatalf("unexpected %q", l)
				}
			}
		}
		for stop := false; !stop; {
			select {
			case <-done:
				stop = true
			default:
			}
			run("FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
			fetches++
		}
		wg.Wait()
		run("NOOP")
		require.Equal(t, n/3, len(view))
		run("FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
		t.Logf("%d FETCH rounds", fetches)
		stillServes(t, ts, "INBOX", n/3)
	})
}

func sortU32(s []uint32) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func TestHostileCopyMove(t *testing.T) {
	forEachStoreOpts(t, Options{InsecureAuth: true}, func(t *testing.T, ts *testServer) {
		ts.deliver(t, "INBOX", msgPlain)
		ts.deliver(t, "INBOX", msgMultipart)
		rc := hostileRaw(t, ts.addr)
		rc.login()
		rc.want("OK", "SELECT INBOX")
		rc.want("NO [TRYCREATE]", "COPY 1:* Nowhere")
		rc.want("NO [TRYCREATE]", "MOVE 1:* Nowhere")
		rc.want("NO [TRYCREATE]", "UID MOVE 1 Nowhere/Deeper")
		rc.want("NO [TRYCREATE]", "UID COPY 1 nowhere")
		rc.want("NO", "MOVE 1:* INBOX")
		rc.want("NO", "MOVE 1:* inbox")
		un := rc.want("OK [COPYUID", "COPY 1 INBOX")
		assert.Contains(t, un, "* 3 EXISTS")
		assert.Empty(t, rc.want("OK", "COPY 9 INBOX"))
		assert.Empty(t, rc.want("OK", "UID MOVE 99 Trash"))
		stillServes(t, ts, "INBOX", 3)
		rc.want("OK", "LOGOUT")
	})
}

func TestHostileRenameInboxWhileSelected(t *testing.T) {
	forEachStoreOpts(t, Options{InsecureAuth: true}, func(t *testing.T, ts *testServer) {
		ts.deliver(t, "INBOX", msgPlain)
		ts.deliver(t, "INBOX", msgMultipart)
		rc := hostileRaw(t, ts.addr)
		rc.login()
		rc.want("OK", "SELECT INBOX")
		// RFC 3501 6.3.5: renaming INBOX moves its messages to the new
		// folder and leaves INBOX empty.
		rc.tag++
		tag := fmt.Sprintf("H%d", rc.tag)
		_, got := rc.do(tag, "RENAME INBOX Old")
		if strings.HasPrefix(got, "OK") {
			stillServes(t, ts, "Old", 2)
			stillServes(t, ts, "INBOX", 0)
		} else {
			require.True(t, strings.HasPrefix(got, "NO"), got)
			stillServes(t, ts, "INBOX", 2)
		}
		// The session goes on and its view stays consistent.
		rc.want("OK", "NOOP")
		un := rc.want("OK", "UID FETCH 1:* (UID)")
		for _, l := range un {
			assert.NotContains(t, l, "FETCH (UID 0")
		}
		rc.want("OK", "LOGOUT")
	})
}

func TestHostileDeleteSelectedElsewhere(t *testing.T) {
	forEachStoreOpts(t, Options{InsecureAuth: true}, func(t *testing.T, ts *testServer) {
		a := hostileRaw(t, ts.addr)
		a.login()
		a.want("OK", "CREATE Work")
		ts.deliver(t, "Work", msgPlain)
		a.want("OK", "SELECT Work")
		b := hostileRaw(t, ts.addr)
		b.login()
		b.want("OK", "DELETE Work")
		b.want("NO [NONEXISTENT]", "SELECT Work")
		// A's folder is gone: its commands fail or report the messages
		// expunged, and never serve a message that no longer exists.
		a.tag++
		tag := fmt.Sprintf("H%d", a.tag)
		un, got := a.do(tag, "FETCH 1 (UID BODY.PEEK[])")
		t.Logf("after DELETE: %q %q", un, got)
		require.Regexp(t, `^(OK|NO|BAD) `, got)
		// At the next rescan the session ends with BYE (like Dovecot)
		// rather than show a mailbox that no longer exists.
		a.write("N1 NOOP\r\n")
		rest := a.readToEOF()
		assert.Contains(t, rest, "* BYE ")
		assert.NotContains(t, rest, "N1 OK")
		b.want("OK", "CREATE Work")
		b.want("OK", "SELECT Work")
		b.want("OK", "LOGOUT")
		stillServes(t, ts, "INBOX", 0)
	})
}

func TestHostileIdle(t *testing.T) {
	ts := newTestServer(t, Options{InsecureAuth: true})
	leak := goroutines(t)
	// IDLE then disconnect, selected or not.
	for _, sel := range []bool{false, true} {
		rc := hostileRaw(t, ts.addr)
		rc.login()
		if sel {
			rc.want("OK", "SELECT INBOX")
		}
		rc.write("I IDLE\r\n")
		require.True(t, strings.HasPrefix(rc.line(), "+"))
		rc.c.Close()
	}
	leak()

	// IDLE, then DONE many times: the first ends IDLE, the next is not a
	// command (a tag without a command) and go-imap closes the connection.
	rc := hostileRaw(t, ts.addr)
	rc.login()
	rc.want("OK", "SELECT INBOX")
	rc.write("I IDLE\r\n")
	require.True(t, strings.HasPrefix(rc.line(), "+"))
	go io.WriteString(rc.c, strings.Repeat("DONE\r\n", 10000))
	_, got := rc.tagged("I")
	assert.True(t, strings.HasPrefix(got, "OK "), got)
	rest := rc.readToEOF()
	assert.NotContains(t, rest, " OK ")
	rc.c.Close()

	// IDLE, DONE, IDLE, DONE... in one write: each is answered.
	rc = hostileRaw(t, ts.addr)
	rc.login()
	rc.want("OK", "SELECT INBOX")
	var b strings.Builder
	for i := range 200 {
		fmt.Fprintf(&b, "I%d IDLE\r\nDONE\r\n", i)
	}
	rc.write(b.String())
	for i := range 200 {
		_, got := rc.tagged(fmt.Sprintf("I%d", i))
		require.True(t, strings.HasPrefix(got, "OK "), got)
	}
	rc.want("OK", "LOGOUT")
	rc.c.Close()
	leak()
	stillServes(t, ts, "INBOX", 0)
}

func TestHostileAuth(t *testing.T) {
	ts := newTestServer(t, Options{InsecureAuth: true})
	rc := hostileRaw(t, ts.addr)
	// Commands that need a login.
	for _, cmd := range []string{"SELECT INBOX", "FETCH 1 (UID)", "APPEND INBOX {3+}\r\nabc",
		"LIST \"\" *", "IDLE", "EXPUNGE", "UID STORE 1 +FLAGS (\\Seen)", "NAMESPACE"} {
		rc.want("BAD", cmd)
	}
	big := strings.Repeat("u", 10<<10)
	rc.want("NO [AUTHENTICATIONFAILED]", `LOGIN "`+big+`" pw`)
	rc.want("NO [AUTHENTICATIONFAILED]", `LOGIN `+testUser+` "`+big+`"`)
	// (A 10 KB username as a literal: see TestHostileLiterals.)
	// go-imap beta.8 answers NO [SERVERBUG] to an initial response that
	// is not base64, where BAD would be right.
	rc.tag++
	_, got := rc.do(fmt.Sprintf("H%d", rc.tag), `AUTHENTICATE PLAIN !!!garbage!!!`)
	assert.Regexp(t, `^(NO|BAD) `, got)
	rc.want("NO [AUTHENTICATIONFAILED]", `AUTHENTICATE PLAIN AGJvZ3VzAHNlY3JldA==`) // \0bogus\0secret
	rc.want("BAD", `AUTHENTICATE PLAIN bm8gbnVscw==`)                               // "no nuls"
	rc.want("BAD", `AUTHENTICATE PLAIN AHUAcAB4`)                                   // "\0u\0p\0x"
	rc.write("A1 AUTHENTICATE PLAIN\r\n")
	require.True(t, strings.HasPrefix(rc.line(), "+"))
	rc.write("%%%not base64%%%\r\n")
	_, got = rc.tagged("A1")
	assert.True(t, strings.HasPrefix(got, "BAD") || strings.HasPrefix(got, "NO"), got)
	rc.write("A2 AUTHENTICATE PLAIN\r\n")
	require.True(t, strings.HasPrefix(rc.line(), "+"))
	rc.write("*\r\n")
	_, got = rc.tagged("A2")
	assert.True(t, strings.HasPrefix(got, "BAD") || strings.HasPrefix(got, "NO"), got)
	rc.want("NO", "AUTHENTICATE CRAM-MD5")
	rc.login()
	rc.want("OK", "SELECT INBOX")
	rc.want("BAD", "LOGIN a b")
	// Unknown commands before login end the connection (go-imap).
	rc2 := hostileRaw(t, ts.addr)
	rc2.write("X1 HELO there\r\n")
	assert.Contains(t, rc2.readToEOF(), "* BYE")
	rc.want("OK", "LOGOUT")
}

func TestHostileStartTLSTwice(t *testing.T) {
	ts := newTestServer(t, Options{})
	rc := hostileRaw(t, ts.addr)
	rc.want("NO", fmt.Sprintf(`LOGIN %s "%s"`, testUser, testPass)) // LOGINDISABLED
	rc.want("OK", "STARTTLS")
	tc := tls.Client(rc.c, ts.tlsConf)
	require.NoError(t, tc.Handshake())
	rc.c, rc.br = tc, bufio.NewReader(tc)
	rc.want("BAD", "STARTTLS")
	rc.login()
	rc.want("BAD", "STARTTLS")
	rc.want("OK", "LOGOUT")

	// STARTTLS with a command pipelined after it in clear text: the
	// command must not be run inside TLS.
	rc = hostileRaw(t, ts.addr)
	rc.write("S1 STARTTLS\r\nS2 CAPABILITY\r\n")
	_, got := rc.tagged("S1")
	require.True(t, strings.HasPrefix(got, "OK"), got)
	tc = tls.Client(rc.c, ts.tlsConf)
	if tc.Handshake() == nil {
		rc.c, rc.br = tc, bufio.NewReader(tc)
		rc.write("S3 NOOP\r\n")
		l := rc.line()
		assert.False(t, strings.HasPrefix(l, "S2 "), "pipelined plaintext command ran inside TLS: %q", l)
	}
}

// TestHostileOddArguments: arguments at the edges of what the grammar
// allows get a defined answer and leave the session usable.
func TestHostileOddArguments(t *testing.T) {
	forEachStoreOpts(t, Options{InsecureAuth: true}, func(t *testing.T, ts *testServer) {
		rc := hostileRaw(t, ts.addr)
		rc.login()
		keywords := strings.TrimSpace(strings.Repeat("$k ", 1000))
		rc.write("A1 APPEND INBOX (" + keywords + ` \Recent) {3}` + "\r\n")
		require.True(t, strings.HasPrefix(rc.line(), "+"))
		rc.write("abc\r\n")
		_, got := rc.tagged("A1")
		require.True(t, strings.HasPrefix(got, "OK [APPENDUID "), got)
		// A 4096-octet name: refused by the store, not half-created.
		rc.write("A2 CREATE {4096}\r\n")
		require.True(t, strings.HasPrefix(rc.line(), "+"))
		rc.write(strings.Repeat("n", 4096) + "\r\n")
		_, got = rc.tagged("A2")
		require.True(t, strings.HasPrefix(got, "NO [CANNOT] "), got)
		rc.want("NO [NONEXISTENT]", "RENAME A A/B")
		rc.want("OK", "CREATE A")
		rc.want("NO [ALREADYEXISTS]", "RENAME A A")
		// Into its own subtree: refused by every store (storetest).
		rc.want("NO [CANNOT]", "RENAME A A/B")
		rc.want("NO [CANNOT]", `CREATE "../../etc"`)
		un := rc.want("OK", `LIST "" *`)
		listed := strings.Join(un, "\n")
		assert.NotContains(t, listed, "nnnn")
		assert.NotContains(t, listed, "etc")
		assert.Regexp(t, `(?m)"/" "?A"?$`, listed)
		assert.NotContains(t, listed, "A/B")
		rc.want("OK", "SELECT INBOX")
		un = rc.want("OK", "STORE 1:* +FLAGS ("+strings.TrimSpace(strings.Repeat("$j ", 500))+")")
		require.Len(t, un, 1)
		un = rc.want("OK", "FETCH 1 (FLAGS)")
		require.Len(t, un, 1)
		assert.Contains(t, un[0], "$k")
		assert.Contains(t, un[0], "$j")
		assert.NotContains(t, un[0], `\Recent`)
		rc.want("NO [BADCHARSET]", "SEARCH CHARSET FOO TEXT x")
		assert.Equal(t, []string{"* SEARCH"}, rc.want("OK", "SEARCH UID 1:4294967295 LARGER 4294967295"))
		// The message has no header field at all.
		assert.Equal(t, []string{"* SEARCH"}, rc.want("OK", `SEARCH HEADER "" ""`))
		assert.Equal(t, []string{"* SEARCH 1"}, rc.want("OK", `SEARCH BODY ""`))
		// go-imap beta.8 answers NO [SERVERBUG] to an impossible date,
		// where BAD would be right.
		rc.tag++
		_, got = rc.do(fmt.Sprintf("H%d", rc.tag), "SEARCH SENTBEFORE 31-Feb-2026")
		assert.Regexp(t, `^(NO|BAD) `, got)
		// "$" before any SEARCH SAVE is the empty set (RFC 5182 2.1).
		assert.Empty(t, rc.want("OK", "FETCH $ (UID)"))
		rc.want("OK", "UID EXPUNGE 1:*") // nothing is \Deleted
		stillServes(t, ts, "INBOX", 1)
		rc.want("OK", "LOGOUT")
	})
}

// TestHostileCopyExpungedElsewhere: COPY and MOVE of a set that includes
// a message another session has expunged, which this session still
// shows: the others are copied or moved, the gone one is skipped, and no
// message is lost or duplicated.
func TestHostileCopyExpungedElsewhere(t *testing.T) {
	forEachStoreOpts(t, Options{InsecureAuth: true}, func(t *testing.T, ts *testServer) {
		for range 4 {
			ts.deliver(t, "INBOX", msgPlain)
		}
		a := hostileRaw(t, ts.addr)
		a.login()
		a.want("OK", "SELECT INBOX")
		b := hostileRaw(t, ts.addr)
		b.login()
		b.want("OK", "SELECT INBOX")
		b.want("OK", `UID STORE 2 +FLAGS.SILENT (\Deleted)`)
		b.want("OK", "UID EXPUNGE 2")
		b.want("OK", "LOGOUT")

		// A has not been told: sequence 2 is still UID 2 for it.
		a.tag++
		un, got := a.do(fmt.Sprintf("H%d", a.tag), "COPY 1:3 Trash")
		t.Logf("COPY: %q %q", un, got)
		require.Regexp(t, `^(OK|NO) `, got)
		copied := uint32(0)
		if strings.HasPrefix(got, "OK") {
			copied = 2
			assert.Contains(t, got, "[COPYUID ")
			assert.NotContains(t, got, ",2 ", "COPYUID names the gone UID")
		}
		stillServes(t, ts, "Trash", copied)

		// COPY may report expunges: A now shows UIDs 1, 3, 4. B expunges
		// 3; A's MOVE 1:2 names UIDs 1 and 3.
		b = hostileRaw(t, ts.addr)
		b.login()
		b.want("OK", "SELECT INBOX")
		b.want("OK", `UID STORE 3 +FLAGS.SILENT (\Deleted)`)
		b.want("OK", "UID EXPUNGE 3")
		b.want("OK", "LOGOUT")
		a.tag++
		un, got = a.do(fmt.Sprintf("H%d", a.tag), "MOVE 1:2 Archive")
		t.Logf("MOVE: %q %q", un, got)
		require.Regexp(t, `^(OK|NO) `, got)
		if strings.HasPrefix(got, "OK") {
			stillServes(t, ts, "Archive", 1)
			stillServes(t, ts, "INBOX", 1)
		} else {
			stillServes(t, ts, "Archive", 0)
			stillServes(t, ts, "INBOX", 2)
		}
		a.want("OK", "NOOP")
		assert.Equal(t, []string{"* 1 FETCH (UID 4)"}, a.want("OK", "FETCH 1:* (UID)"))
	})
}

// TestHostileDeleteWhileIdle: the folder a session is IDLE in is deleted
// by another session: the IDLE session is told BYE and closed, and its
// goroutines end.
func TestHostileDeleteWhileIdle(t *testing.T) {
	forEachStoreOpts(t, Options{InsecureAuth: true}, func(t *testing.T, ts *testServer) {
		leak := goroutines(t)
		a := hostileRaw(t, ts.addr)
		a.login()
		a.want("OK", "CREATE Work")
		ts.deliver(t, "Work", msgPlain)
		a.want("OK", "SELECT Work")
		a.write("I IDLE\r\n")
		require.True(t, strings.HasPrefix(a.line(), "+"))
		b := hostileRaw(t, ts.addr)
		b.login()
		b.want("OK", "DELETE Work")
		b.want("OK", "LOGOUT")
		rest := a.readToEOF()
		assert.Contains(t, rest, "* BYE ")
		a.c.Close()
		leak()
		stillServes(t, ts, "INBOX", 0)
	})
}

// TestHostilePipelinedAppends: 100 APPENDs with non-synchronizing
// literals (RFC 7888) in one write, the last one cut short, then the
// client goes away: every complete message is stored whole, each with
// its OK, and the cut one is not.
func TestHostilePipelinedAppends(t *testing.T) {
	forEachStoreOpts(t, Options{InsecureAuth: true}, func(t *testing.T, ts *testServer) {
		rc := hostileRaw(t, ts.addr)
		rc.login()
		var b strings.Builder
		const n = 100
		for i := range n {
			m := fmt.Sprintf("Subject: p%d\r\n\r\n%s\r\n", i, strings.Repeat("b", i*37))
			fmt.Fprintf(&b, "P%d APPEND INBOX {%d+}\r\n%s\r\n", i, len(m), m)
		}
		b.WriteString("CUT APPEND INBOX {500+}\r\nSubject: cut\r\n\r\n")
		rc.write(b.String())
		require.NoError(t, rc.c.(*net.TCPConn).CloseWrite())
		out := rc.readToEOF()
		assert.Equal(t, n, strings.Count(out, " OK [APPENDUID "), out)
		assert.NotContains(t, out, "CUT OK")

		c := ts.dial(t, nil)
		_, err := c.Select("INBOX", nil).Wait()
		require.NoError(t, err)
		var all imap.SeqSet
		all.AddRange(1, n)
		msgs, err := c.Fetch(all, &imap.FetchOptions{
			BodySection: []*imap.FetchItemBodySection{{Peek: true}},
		}).Collect()
		require.NoError(t, err)
		require.Len(t, msgs, n)
		for i, m := range msgs {
			want := fmt.Sprintf("Subject: p%d\r\n\r\n%s\r\n", i, strings.Repeat("b", i*37))
			require.Len(t, m.BodySection, 1)
			for _, body := range m.BodySection {
				assert.Equal(t, want, string(body.Bytes), "message %d", i+1)
			}
		}
		stillServes(t, ts, "INBOX", n)
	})
}
