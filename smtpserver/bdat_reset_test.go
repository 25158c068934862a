package smtpserver

import (
	"fmt"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBDATReset: a BDAT transaction abandoned after its first chunk, by
// RSET (RFC 3030 4.1) or by a chunk over MaxMessageBytes (552 5.3.4),
// stores nothing, and the session goes on: the next transaction is
// accepted and the connection stays open (the abandoned transfer used to
// be taken for a lost connection, 421, which closed the session after the
// next reply). The next transaction uses DATA: a second BDAT transaction
// after a reset races in go-smtp v0.25.1 (the abandoned transfer's
// goroutine sends its result on the conn's dataResult channel, which the
// new BDAT replaces without synchronisation).
func TestBDATReset(t *testing.T) {
	first := "Subject: abandoned\r\n\r\n" + strings.Repeat("a", 40) + "\r\n"
	for _, tc := range []struct {
		name  string
		abort func(s *script)
	}{
		{"RSET", func(s *script) { s.expect("RSET", "250") }},
		{"too big", func(s *script) {
			chunk := strings.Repeat(strings.Repeat("y", 98)+"\r\n", 20)
			s.write(fmt.Sprintf("BDAT %d\r\n%s", len(chunk), chunk))
			assert.True(t, strings.HasPrefix(s.reply()[0], "552 5.3.4"))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := newRecorder()
			opts := testOptions(t, rec)
			opts.MaxMessageBytes = 1000
			_, addr := start(t, opts, MX)
			s := dial(t, addr)
			s.greet()
			s.expect("MAIL FROM:<a@remote.test>", "250")
			s.expect("RCPT TO:<alice@example.org>", "250")
			s.write(fmt.Sprintf("BDAT %d\r\n%s", len(first), first))
			require.True(t, strings.HasPrefix(s.reply()[0], "250"))
			tc.abort(s)

			for range 3 {
				s.expect("RSET", "250")
				s.expect("NOOP", "250")
			}
			s.expect("MAIL FROM:<a@remote.test>", "250")
			s.expect("RCPT TO:<alice@example.org>", "250")
			require.True(t, strings.HasPrefix(s.data(simpleMsg), "250"))
			m := rec.next(t)
			assert.True(t, strings.HasSuffix(m.body, simpleMsg))
			s.expect("NOOP", "250")
			s.expect("QUIT", "221")
			assert.Equal(t, 1, rec.count(), "the abandoned transaction was not delivered")
		})
	}
}

// TestBDATCutShort: a client that closes its side in the middle of a BDAT
// chunk has not been told 250: nothing is handed over as a complete
// message. go-smtp ends a LAST chunk cut short like a complete one (its
// io.Copy from a LimitReader takes the connection's EOF for the end of the
// chunk); the session's connection noticed the EOF and fails the message.
func TestBDATCutShort(t *testing.T) {
	for _, last := range []string{"", " LAST"} {
		t.Run("BDAT"+last, func(t *testing.T) {
			rec := newRecorder()
			_, addr := start(t, testOptions(t, rec), MX)
			s := dial(t, addr)
			s.greet()
			s.expect("MAIL FROM:<a@remote.test>", "250")
			s.expect("RCPT TO:<alice@example.org>", "250")
			s.write("BDAT 1000" + last + "\r\n" + simpleMsg)
			// Half-close, then read to the end: the server closes the
			// connection once the session is over, so the handler has
			// returned by then.
			require.NoError(t, s.conn.(*net.TCPConn).CloseWrite())
			rest, err := io.ReadAll(s.r)
			require.NoError(t, err)
			assert.NotContains(t, string(rest), "250 2.0.0 OK", "not acknowledged")
			assert.Zero(t, rec.count(), "the truncated message was handed to the handler as complete")
		})
	}
}
