package imapbackend

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAppendCutShort: a client that goes away in the middle of an APPEND
// literal, synchronising or not (RFC 7888), has not been told OK, so the
// truncated message must not be stored.
func TestAppendCutShort(t *testing.T) {
	for _, tc := range []struct {
		name     string
		newStore func(testing.TB) testStore
		nonSync  bool
	}{
		{"memstore", newTestStore, false},
		{"memstore/LITERAL+", newTestStore, true},
		{"maildir", newMaildirStore, false},
		{"maildir/LITERAL+", newMaildirStore, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServerStore(t, tc.newStore(t), Options{InsecureAuth: true})
			c, err := net.Dial("tcp", ts.addr)
			require.NoError(t, err)
			defer c.Close()
			require.NoError(t, c.SetDeadline(time.Now().Add(waitFor)))
			rc := &rawConn{t: t, c: c}
			rc.br = bufio.NewReader(c)
			rc.line() // greeting
			_, ok := rc.cmd(`LOGIN %s "%s"`, testUser, testPass)
			require.True(t, strings.HasPrefix(ok, "OK"), ok)
			part := "Subject: cut\r\n\r\n" + strings.Repeat("x", 500) + "\r\n"
			if tc.nonSync {
				_, err = io.WriteString(c, "A APPEND INBOX {10000+}\r\n"+part)
				require.NoError(t, err)
			} else {
				_, err = io.WriteString(c, "A APPEND INBOX {10000}\r\n")
				require.NoError(t, err)
				require.True(t, strings.HasPrefix(rc.line(), "+"))
				_, err = io.WriteString(c, part)
				require.NoError(t, err)
			}
			// Half-close: the server sees the end of the literal early,
			// answers (or not), then closes the connection once the
			// session is over; reading to EOF waits for that.
			require.NoError(t, c.(*net.TCPConn).CloseWrite())
			_, err = io.Copy(io.Discard, rc.br)
			require.NoError(t, err)

			cl := ts.dial(t, nil)
			st, err := cl.Status("INBOX", &imap.StatusOptions{NumMessages: true}).Wait()
			require.NoError(t, err)
			assert.EqualValues(t, 0, *st.NumMessages, "nothing stored")
		})
	}
}
