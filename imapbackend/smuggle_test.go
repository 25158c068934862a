package imapbackend

import (
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAppendCannotSmuggleCommands: a client appending a message over
// APPENDLIMIT whose lines look like IMAP commands (content an attacker
// mailed to the victim) gets NO [TOOBIG], and none of those lines runs.
// go-imap does not consume a refused non-synchronising literal, so the
// server must not advertise LITERAL+: a compliant client then sends large
// literals synchronising, and they are refused before they are sent.
func TestAppendCannotSmuggleCommands(t *testing.T) {
	ts := newTestServer(t, Options{AppendLimit: 8192})
	c := ts.dial(t, nil)
	caps, err := c.Capability().Wait()
	require.NoError(t, err)
	assert.False(t, caps.Has(imap.CapLiteralPlus), "LITERAL+ must not be advertised")

	body := "Subject: x\r\n\r\n" + strings.Repeat("Z1 CREATE injected\r\n", 1000)
	cmd := c.Append("INBOX", int64(len(body)), nil)
	_, _ = cmd.Write([]byte(body))
	_ = cmd.Close()
	_, err = cmd.Wait()
	require.Error(t, err)
	var imapErr *imap.Error
	require.ErrorAs(t, err, &imapErr)
	assert.Equal(t, imap.ResponseCodeTooBig, imapErr.Code)

	// imapclient gives up on the connection after a refused synchronising
	// literal; look from a new session.
	names := listNames(t, ts.dial(t, nil), "", "*", nil)
	assert.NotContains(t, names, "injected", "no line of the refused literal ran as a command")
}
