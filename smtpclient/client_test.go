package smtpclient_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks"
	"github.com/mailblocks/mailblocks/internal/testutil"
	"github.com/mailblocks/mailblocks/smtpclient"
)

const testBody = "From: a@sender.test\r\nTo: b@dest.test\r\nSubject: test\r\n\r\nHello.\r\n.dot line\r\n"

// newClient returns a client with short but generous timeouts, closed at
// the end of the test.
func newClient(t testing.TB, opts smtpclient.Options) *smtpclient.Client {
	t.Helper()
	if opts.Hostname == "" {
		opts.Hostname = "client.test"
	}
	if opts.Logger == nil {
		opts.Logger = testutil.Logger(t, slog.LevelDebug)
	}
	if opts.Timeouts == (smtpclient.Timeouts{}) {
		opts.Timeouts = smtpclient.Timeouts{Connect: 10 * time.Second, Greeting: 10 * time.Second, Mail: 10 * time.Second,
			Rcpt: 10 * time.Second, DataInit: 10 * time.Second, DataBlock: 10 * time.Second, DataTermination: 10 * time.Second}
	}
	c := smtpclient.New(opts)
	t.Cleanup(func() { c.Close() })
	return c
}

func envelope(from string, rcpts ...string) *mailblocks.Envelope {
	env := &mailblocks.Envelope{ID: "test-1", From: from}
	for _, r := range rcpts {
		env.Recipients = append(env.Recipients, mailblocks.Recipient{Address: r})
	}
	return env
}

func deliver(t testing.TB, c *smtpclient.Client, env *mailblocks.Envelope, body string) []mailblocks.DeliveryStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st := c.Deliver(ctx, env, strings.NewReader(body), int64(len(body)))
	require.Len(t, st, len(env.Recipients))
	for i, s := range st {
		require.Equal(t, env.Recipients[i].Address, s.Recipient)
	}
	return st
}

// literal returns an address at the fake server's address literal.
func literal(local string) string { return local + "@[127.0.0.1]" }

// reply extracts the error details of a status.
func reply(t testing.TB, err error) (*smtpclient.Error, *mailblocks.Error) {
	t.Helper()
	require.Error(t, err)
	var ce *smtpclient.Error
	require.True(t, errors.As(err, &ce), "not an *smtpclient.Error: %v", err)
	var me *mailblocks.Error
	require.True(t, errors.As(err, &me), "not a *mailblocks.Error: %v", err)
	return ce, me
}

func TestDeliverToAddressLiteral(t *testing.T) {
	srv := startFake(t, "127.0.0.1:0", script{Ext: []string{"8BITMIME", "SIZE 1000000", "ENHANCEDSTATUSCODES"}})
	c := newClient(t, smtpclient.Options{Port: srv.Port()})
	env := envelope("a@sender.test", literal("b"), literal("c"))
	st := deliver(t, c, env, testBody)
	for _, s := range st {
		require.NoError(t, s.Err)
		assert.Equal(t, "[127.0.0.1]", s.RemoteHost)
		assert.False(t, s.RemoteDSN)
	}
	msgs := srv.Messages()
	require.Len(t, msgs, 1)
	assert.Equal(t, "<a@sender.test> BODY=8BITMIME SIZE="+fmt.Sprint(len(testBody)), msgs[0].From)
	assert.Equal(t, []string{"<b@[127.0.0.1]>", "<c@[127.0.0.1]>"}, msgs[0].Rcpts)
	assert.Equal(t, strings.Replace(testBody, "\r\n.dot", "\r\n.dot", 1), msgs[0].Data)
	assert.Contains(t, srv.Commands(), "EHLO client.test")
}

func TestDeliverNullSender(t *testing.T) {
	srv := startFake(t, "127.0.0.1:0", script{})
	c := newClient(t, smtpclient.Options{Port: srv.Port()})
	st := deliver(t, c, envelope("", literal("b")), testBody)
	require.NoError(t, st[0].Err)
	require.Len(t, srv.Messages(), 1)
	assert.Equal(t, "<> BODY=8BITMIME", srv.Messages()[0].From)
}

// TestScriptedReplies checks the classification of every refusal: which
// recipients it affects, the code, enhanced code and text kept, the
// command named, and transient versus permanent.
func TestScriptedReplies(t *testing.T) {
	type want struct {
		code    int
		enh     string
		cmd     string
		text    string
		temp    bool
		success bool
	}
	ok := want{success: true}
	tests := []struct {
		name  string
		scr   script
		rcpts []string
		want  []want
		msgs  int
	}{
		{"greeting 421", script{Greeting: "421 4.3.2 Not now"}, []string{"b"},
			[]want{{code: 421, enh: "4.3.2", cmd: "greeting", text: "Not now", temp: true}}, 0},
		{"greeting 554", script{Greeting: "554 5.7.1 Go away"}, []string{"b"},
			[]want{{code: 554, enh: "5.7.1", cmd: "greeting", text: "Go away"}}, 0},
		{"EHLO 550", script{Reply: map[string]string{"EHLO": "550 5.7.1 No EHLO for you"}}, []string{"b"},
			[]want{{code: 550, enh: "5.7.1", cmd: "EHLO", text: "No EHLO for you"}}, 0},
		{"EHLO 502 falls back to HELO", script{Reply: map[string]string{"EHLO": "502 5.5.2 Unknown"}}, []string{"b"},
			[]want{ok}, 1},
		{"MAIL 451 applies to all", script{Reply: map[string]string{"MAIL": "451 4.3.0 Try later"}}, []string{"b", "c"},
			[]want{{code: 451, enh: "4.3.0", cmd: "MAIL FROM", text: "Try later", temp: true}, {code: 451, enh: "4.3.0", cmd: "MAIL FROM", text: "Try later", temp: true}}, 0},
		{"MAIL 550 applies to all", script{Reply: map[string]string{"MAIL": "550 5.7.1 Sender rejected"}}, []string{"b", "c"},
			[]want{{code: 550, enh: "5.7.1", cmd: "MAIL FROM", text: "Sender rejected"}, {code: 550, enh: "5.7.1", cmd: "MAIL FROM", text: "Sender rejected"}}, 0},
		{"RCPT per recipient", script{Rcpt: map[string]string{"bad@[127.0.0.1]": "550 5.1.1 No such user", "later@[127.0.0.1]": "450 4.2.1 Mailbox busy"}},
			[]string{"bad", "good", "later"},
			[]want{{code: 550, enh: "5.1.1", cmd: "RCPT TO", text: "No such user"}, ok, {code: 450, enh: "4.2.1", cmd: "RCPT TO", text: "Mailbox busy", temp: true}}, 1},
		{"RCPT without enhanced code", script{Rcpt: map[string]string{"bad@[127.0.0.1]": "550 nope"}}, []string{"bad"},
			[]want{{code: 550, enh: "5.0.0", cmd: "RCPT TO", text: "nope"}}, 0},
		{"RCPT 421 ends the session", script{Rcpt: map[string]string{"c@[127.0.0.1]": "421 4.4.2 Closing"}}, []string{"b", "c", "d"},
			[]want{{code: 421, enh: "4.4.2", cmd: "RCPT TO", text: "Closing", temp: true}, {code: 421, enh: "4.4.2", cmd: "RCPT TO", text: "Closing", temp: true}, {code: 421, enh: "4.4.2", cmd: "RCPT TO", text: "Closing", temp: true}}, 0},
		{"DATA 554", script{Reply: map[string]string{"DATA": "554 5.5.1 No valid recipients"}}, []string{"b"},
			[]want{{code: 554, enh: "5.5.1", cmd: "DATA", text: "No valid recipients"}}, 0},
		{"DATA 451", script{Reply: map[string]string{"DATA": "451 4.3.0 Later"}}, []string{"b", "c"},
			[]want{{code: 451, enh: "4.3.0", cmd: "DATA", text: "Later", temp: true}, {code: 451, enh: "4.3.0", cmd: "DATA", text: "Later", temp: true}}, 0},
		{"end of data 552", script{Reply: map[string]string{".": "552 5.3.4 Too big"}}, []string{"b"},
			[]want{{code: 552, enh: "5.3.4", cmd: "end of data", text: "Too big"}}, 0},
		{"end of data 451 only for accepted", script{Reply: map[string]string{".": "451 4.3.0 Disk full"}, Rcpt: map[string]string{"bad@[127.0.0.1]": "550 5.1.1 Unknown"}},
			[]string{"b", "bad"},
			[]want{{code: 451, enh: "4.3.0", cmd: "end of data", text: "Disk full", temp: true}, {code: 550, enh: "5.1.1", cmd: "RCPT TO", text: "Unknown"}}, 0},
		{"garbage greeting", script{Greeting: "HELLO THERE"}, []string{"b"},
			[]want{{code: 451, enh: "4.5.0", cmd: "greeting", temp: true}}, 0},
		{"unexpected reply code", script{Reply: map[string]string{"MAIL": "354 what"}}, []string{"b"},
			[]want{{code: 451, enh: "4.5.0", cmd: "MAIL FROM", temp: true}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startFake(t, "127.0.0.1:0", tt.scr)
			c := newClient(t, smtpclient.Options{Port: srv.Port()})
			var rcpts []string
			for _, r := range tt.rcpts {
				rcpts = append(rcpts, literal(r))
			}
			st := deliver(t, c, envelope("a@sender.test", rcpts...), testBody)
			for i, w := range tt.want {
				if w.success {
					assert.NoError(t, st[i].Err, rcpts[i])
					continue
				}
				ce, me := reply(t, st[i].Err)
				assert.Equal(t, w.code, me.Code, rcpts[i])
				assert.Equal(t, w.enh, me.Enhanced.String(), rcpts[i])
				assert.Equal(t, w.cmd, ce.Command, rcpts[i])
				assert.Equal(t, w.temp, me.Temporary(), rcpts[i])
				assert.Equal(t, w.temp, mailblocks.IsTemporary(st[i].Err), rcpts[i])
				if w.text != "" {
					assert.Equal(t, w.text, me.Message, rcpts[i])
					assert.True(t, ce.Remote)
				}
				assert.Equal(t, "[127.0.0.1]", ce.RemoteHost)
			}
			assert.Len(t, srv.Messages(), tt.msgs)
		})
	}
}

// TestNoAnswer: a server that stops answering is given up on after the
// configured timeout, temporarily.
func TestNoAnswer(t *testing.T) {
	for _, hang := range []string{"CONNECT", "EHLO", "MAIL", "RCPT", "DATA", "."} {
		t.Run(hang, func(t *testing.T) {
			t.Parallel()
			srv := startFake(t, "127.0.0.1:0", script{Hang: hang})
			d := 2 * time.Second
			c := newClient(t, smtpclient.Options{Port: srv.Port(), Timeouts: smtpclient.Timeouts{
				Connect: d, Greeting: d, Mail: d, Rcpt: d, DataInit: d, DataBlock: d, DataTermination: d}})
			st := deliver(t, c, envelope("a@sender.test", literal("b")), testBody)
			ce, me := reply(t, st[0].Err)
			assert.True(t, me.Temporary())
			assert.Equal(t, "4.4.2", me.Enhanced.String(), me.Error())
			assert.False(t, ce.Remote)
			assert.Empty(t, srv.Messages())
		})
	}
}

// TestDropMidData: a connection lost during the message is a temporary
// failure for every accepted recipient.
func TestDropMidData(t *testing.T) {
	srv := startFake(t, "127.0.0.1:0", script{DropInData: true})
	c := newClient(t, smtpclient.Options{Port: srv.Port()})
	body := testBody + strings.Repeat("x", 70)
	st := deliver(t, c, envelope("a@sender.test", literal("b"), literal("c")), body)
	for _, s := range st {
		ce, me := reply(t, s.Err)
		assert.True(t, me.Temporary())
		assert.Contains(t, []string{smtpclient.CmdBody, smtpclient.CmdEndOfData}, ce.Command)
	}
	assert.Empty(t, srv.Messages())
}

// failingReader fails after its first bytes, like a spool file on a dying
// disk.
type failingReader struct{ data string }

func (f failingReader) ReadAt(p []byte, off int64) (int, error) {
	if off >= 10 {
		return 0, errors.New("disk on fire")
	}
	n := copy(p, f.data[off:min(int64(len(f.data)), 10)])
	return n, nil
}

// TestBodyReadError: a body that cannot be read must not be sent
// truncated: the session is dropped before the final dot.
func TestBodyReadError(t *testing.T) {
	srv := startFake(t, "127.0.0.1:0", script{})
	c := newClient(t, smtpclient.Options{Port: srv.Port()})
	env := envelope("a@sender.test", literal("b"))
	st := c.Deliver(context.Background(), env, failingReader{testBody}, int64(len(testBody)))
	_, me := reply(t, st[0].Err)
	assert.True(t, me.Temporary())
	assert.Contains(t, me.Error(), "disk on fire")
	assert.Empty(t, srv.Messages())
	assert.NotContains(t, srv.Commands(), ".")
}

func TestBadAddresses(t *testing.T) {
	srv := startFake(t, "127.0.0.1:0", script{})
	c := newClient(t, smtpclient.Options{Port: srv.Port()})
	st := deliver(t, c, envelope("a@sender.test", "no-at-sign", literal("x\r\nRSET"), literal("good")), testBody)
	for _, s := range st[:2] {
		_, me := reply(t, s.Err)
		assert.Equal(t, "5.1.3", me.Enhanced.String())
	}
	require.NoError(t, st[2].Err)
	st = deliver(t, c, envelope("a@x\r\nRSET", literal("good")), testBody)
	_, me := reply(t, st[0].Err)
	assert.Equal(t, "5.1.7", me.Enhanced.String())
}

func TestContextCancelled(t *testing.T) {
	srv := startFake(t, "127.0.0.1:0", script{Hang: "MAIL"})
	c := newClient(t, smtpclient.Options{Port: srv.Port()})
	ctx, cancel := context.WithCancel(context.Background())
	// Cancel as soon as the server has seen MAIL; no timing involved.
	go func() {
		defer cancel()
		deadline := time.Now().Add(30 * time.Second)
		for !containsPrefix(srv.Commands(), "MAIL") && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}()
	st := c.Deliver(ctx, envelope("a@sender.test", literal("b")), strings.NewReader(testBody), int64(len(testBody)))
	_, me := reply(t, st[0].Err)
	assert.True(t, me.Temporary())
	assert.ErrorIs(t, st[0].Err, context.Canceled)
}

func containsPrefix(list []string, p string) bool {
	for _, l := range list {
		if strings.HasPrefix(l, p) {
			return true
		}
	}
	return false
}

// blockingDialer never connects: it waits for its context to end, like a
// SYN to a black hole.
type blockingDialer struct{}

func (blockingDialer) DialContext(ctx context.Context, _, _ string) (net.Conn, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestConnectTimeout: Timeouts.Connect reaches the Dialer's context, and
// the failure is the temporary 4.4.1 "no answer from host".
func TestConnectTimeout(t *testing.T) {
	c := newClient(t, smtpclient.Options{Dialer: blockingDialer{}, Timeouts: smtpclient.Timeouts{Connect: time.Second}})
	st := deliver(t, c, envelope("a@sender.test", literal("b")), testBody)
	ce, me := reply(t, st[0].Err)
	assert.Equal(t, smtpclient.CmdConnect, ce.Command)
	assert.Equal(t, "4.4.1", me.Enhanced.String())
	assert.True(t, me.Temporary())
	assert.ErrorIs(t, st[0].Err, context.DeadlineExceeded)
	assert.Empty(t, st[0].RemoteHost)
}

// bigBody is a ReaderAt of n bytes of 76-character lines, generated, not
// held in memory.
type bigBody int64

func (b bigBody) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(b) {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && off+int64(n) < int64(b) {
		if (off+int64(n))%78 >= 76 {
			p[n] = "\r\n"[(off+int64(n))%78-76]
		} else {
			p[n] = 'x'
		}
		n++
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// TestDataBlockTimeout: a server that stops reading the message makes the
// client's writes block; the data block timeout (RFC 5321 4.5.3.2.5) ends
// the attempt, temporarily.
func TestDataBlockTimeout(t *testing.T) {
	srv := startFake(t, "127.0.0.1:0", script{StallInData: true})
	d := 10 * time.Second
	c := newClient(t, smtpclient.Options{Port: srv.Port(), Timeouts: smtpclient.Timeouts{
		Connect: d, Greeting: d, Mail: d, Rcpt: d, DataInit: d, DataBlock: time.Second, DataTermination: d}})
	const size = 64 << 20 // far more than the socket buffers hold
	st := c.Deliver(context.Background(), envelope("a@sender.test", literal("b")), bigBody(size), size)
	ce, me := reply(t, st[0].Err)
	assert.Equal(t, smtpclient.CmdBody, ce.Command)
	assert.Equal(t, "4.4.2", me.Enhanced.String())
	assert.ErrorIs(t, st[0].Err, os.ErrDeadlineExceeded)
}
