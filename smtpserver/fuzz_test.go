package smtpserver

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks"
)

// panicWatch is a slog handler that notices go-smtp's "panic serving" lines
// (go-smtp recovers panics in command handlers and logs them).
type panicWatch struct{ panics *atomic.Int32 }

func (h panicWatch) Enabled(context.Context, slog.Level) bool { return true }
func (h panicWatch) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "panic") {
		h.panics.Add(1)
	}
	return nil
}
func (h panicWatch) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h panicWatch) WithGroup(string) slog.Handler      { return h }

// FuzzCommandLoop feeds arbitrary bytes to the server as a client would and
// checks that the server neither panics nor hangs: once the client has sent
// everything and half-closed, the server must end the session.
func FuzzCommandLoop(f *testing.F) {
	seeds := []string{
		"EHLO x\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\nSubject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n",
		"EHLO x\r\nMAIL FROM:<a@remote.test> SIZE=10\r\nRCPT TO:<alice@example.org>\r\nBDAT 5\r\nhelloBDAT 0 LAST\r\n",
		"EHLO x\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.org>\r\nBDAT 100\r\nshort",
		"EHLO x\r\nAUTH PLAIN\r\nAGFsaWNlQGV4YW1wbGUub3JnAHNlY3JldA==\r\nMAIL FROM:<alice@example.org>\r\nRCPT TO:<x@remote.test>\r\nDATA\r\n.\r\n",
		"EHLO x\r\nAUTH LOGIN\r\nYWxpY2VAZXhhbXBsZS5vcmc=\r\n*\r\nAUTH LOGIN\r\n",
		"HELO\r\nEHLO\r\nMAIL\r\nRCPT\r\nDATA\r\nBDAT\r\nBDAT x\r\nRSET\r\nNOOP\r\nVRFY x\r\nSTARTTLS\r\n\x16\x03\x01\x00",
		"EHLO x\r\nMAIL FROM:<> RET=FULL ENVID=x+2B NOTIFY=NEVER\r\nRCPT TO:<@a,@b:u@c> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;u@c\r\nDATA\r\nx\n.\r\n\r\n.\r\n",
		"EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<\"u@v\"@example.org>\r\nRCPT TO:<u%v@example.org>\r\nRSET\r\nMAIL FROM:<\xff@b> SMTPUTF8\r\n",
		"LHLO x\r\n" + strings.Repeat("A", 3000) + "\r\n",
		"EHLO x\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\nReceived: a\r\nReceived: b\r\nReceived: c\r\n\r\n\x00\r\n.\r\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	var panics atomic.Int32
	opts := testOptions(f, newRecorder())
	opts.Handler = HandlerFunc(func(ctx context.Context, env *mailblocks.Envelope, body io.Reader) error {
		_, err := io.Copy(io.Discard, body)
		return err
	})
	opts.Logger = slog.New(panicWatch{&panics})
	opts.AllowInsecureAuth = true
	opts.MXAuth = true
	opts.MaxHops = 2
	opts.MaxMessageBytes = 2000
	opts.CommandTimeout = 5 * time.Second
	opts.DataTimeout = 5 * time.Second
	opts.MaxConnectionsPerIP = -1
	_, addr := start(f, opts, MX)

	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer c.Close()
		c.SetDeadline(time.Now().Add(30 * time.Second))
		wrote := make(chan struct{})
		go func() {
			defer close(wrote)
			c.Write(data) // may fail when the server closes first
			c.(*net.TCPConn).CloseWrite()
		}()
		_, err = io.Copy(io.Discard, c)
		c.Close()
		<-wrote // data belongs to the fuzzer once we return
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("server hung on %q", data)
		}
		require.Zero(t, panics.Load(), "server panicked on %q", data)
	})
}
