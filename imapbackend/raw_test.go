package imapbackend

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rawConn speaks IMAP by hand, for what imapclient cannot send.
type rawConn struct {
	t   *testing.T
	c   net.Conn
	br  *bufio.Reader
	tag int
}

func dialRaw(t *testing.T, addr string) *rawConn {
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	rc := &rawConn{t: t, c: c, br: bufio.NewReader(c)}
	rc.line() // greeting
	return rc
}

func (rc *rawConn) line() string {
	rc.c.SetReadDeadline(time.Now().Add(waitFor))
	l, err := rc.br.ReadString('\n')
	require.NoError(rc.t, err)
	return strings.TrimRight(l, "\r\n")
}

// cmd sends a command and returns the untagged lines and the tagged one.
func (rc *rawConn) cmd(format string, args ...any) ([]string, string) {
	rc.tag++
	tag := fmt.Sprintf("R%d", rc.tag)
	_, err := fmt.Fprintf(rc.c, tag+" "+format+"\r\n", args...)
	require.NoError(rc.t, err)
	var untagged []string
	for {
		l := rc.line()
		if strings.HasPrefix(l, tag+" ") {
			return untagged, strings.TrimPrefix(l, tag+" ")
		}
		untagged = append(untagged, l)
	}
}

func TestRawProtocol(t *testing.T) {
	ts := newTestServer(t, Options{InsecureAuth: true})
	ts.deliver(t, "INBOX", msgPlain, `\Seen`)
	ts.deliver(t, "INBOX", msgMultipart)
	ts.deliver(t, "INBOX", crlf("Subject: tiny\n\nsmall\n"))
	rc := dialRaw(t, ts.addr)
	_, ok := rc.cmd(`LOGIN %s "%s"`, testUser, testPass)
	require.True(t, strings.HasPrefix(ok, "OK"), ok)
	_, ok = rc.cmd("SELECT INBOX")
	require.Contains(t, ok, "[READ-WRITE]")

	// RFC 5182 SEARCHRES: SAVE, then "$" in FETCH and SEARCH.
	un, ok := rc.cmd("SEARCH RETURN (SAVE) UNSEEN")
	require.True(t, strings.HasPrefix(ok, "OK"), ok)
	un, ok = rc.cmd("FETCH $ (UID)")
	require.True(t, strings.HasPrefix(ok, "OK"), ok)
	assert.Equal(t, []string{"* 2 FETCH (UID 2)", "* 3 FETCH (UID 3)"}, un)
	un, _ = rc.cmd("UID SEARCH UID $ SMALLER 100")
	assert.Equal(t, []string{"* SEARCH 3"}, un)

	// RFC 4731 ESEARCH.
	un, _ = rc.cmd("UID SEARCH RETURN (MIN MAX COUNT ALL) ALL")
	require.Len(t, un, 1)
	assert.Equal(t, `* ESEARCH (TAG "R6") UID ALL 1:3 MIN 1 MAX 3 COUNT 3`, un[0])
	un, _ = rc.cmd("SEARCH RETURN (COUNT) KEYWORD $Nope")
	assert.Equal(t, []string{`* ESEARCH (TAG "R7") COUNT 0`}, un)

	// Obsolete RFC822 items (RFC 3501), still used by some clients.
	un, _ = rc.cmd("FETCH 3 (RFC822.SIZE RFC822.HEADER)")
	require.NotEmpty(t, un)
	assert.Contains(t, un[0], "RFC822.SIZE 24")
	assert.Contains(t, un[0], "RFC822.HEADER {17}")

	// Sequence ranges past the end and "*".
	un, _ = rc.cmd("FETCH 2:* (UID)")
	assert.Equal(t, []string{"* 2 FETCH (UID 2)", "* 3 FETCH (UID 3)"}, un)
	un, _ = rc.cmd("UID FETCH 100:* (UID)")
	assert.Equal(t, []string{"* 3 FETCH (UID 3)"}, un)

	// STORE on \Recent is ignored; invalid flags are refused.
	_, ok = rc.cmd(`STORE 1 +FLAGS (\Recent)`)
	assert.True(t, strings.HasPrefix(ok, "OK"), ok)
	_, ok = rc.cmd(`STORE 1 +FLAGS (\Bogus)`)
	assert.False(t, strings.HasPrefix(ok, "OK"), ok)

	// MOVE into the selected mailbox is refused.
	_, ok = rc.cmd("MOVE 1 INBOX")
	assert.True(t, strings.HasPrefix(ok, "NO"), ok)

	// EXAMINE: READ-ONLY, and STORE is refused with [READ-ONLY].
	_, ok = rc.cmd("EXAMINE INBOX")
	require.Contains(t, ok, "[READ-ONLY]")
	_, ok = rc.cmd(`STORE 1 +FLAGS (\Flagged)`)
	assert.Contains(t, ok, "NO [READ-ONLY]")
	_, ok = rc.cmd("LOGOUT")
	assert.True(t, strings.HasPrefix(ok, "OK"), ok)
}
