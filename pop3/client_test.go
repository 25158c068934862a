package pop3

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/emersion/go-sasl"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks/internal/testutil"
)

func TestClientAgainstServer(t *testing.T) {
	st := threeMessages(t)
	_, addr := startServer(t, st, testOptions())
	ctx := testContext(t)

	c, err := Dial(ctx, addr, ClientOptions{})
	require.NoError(t, err)
	defer c.Close()
	assert.Equal(t, "pop.test POP3 server ready", c.Greeting())
	assert.False(t, c.IsTLS())

	caps, err := c.Capabilities(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"PLAIN"}, caps["SASL"])
	assert.Contains(t, caps, "PIPELINING")
	assert.Equal(t, []string{"mailblocks"}, caps["IMPLEMENTATION"])

	err = c.Login(ctx, "u", "wrong")
	var pe *Error
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, &Error{Command: "PASS", Code: "AUTH", Text: "authentication failed"}, pe)
	assert.False(t, pe.Temporary())
	require.NoError(t, c.Login(ctx, "u", "pw"))

	n, size, err := c.Stat(ctx)
	require.NoError(t, err)
	assert.Equal(t, 3, n)
	assert.Equal(t, int64(90), size)

	list, err := c.List(ctx)
	require.NoError(t, err)
	assert.Equal(t, []MessageInfo{{1, 34}, {2, 25}, {3, 31}}, list)

	ids, err := c.UIDL(ctx)
	require.NoError(t, err)
	assert.Equal(t, map[int]string{1: st.uidl(t, 1), 2: st.uidl(t, 2), 3: st.uidl(t, 3)}, ids)

	// Byte-stuffing round trip; bare LF arrives as CRLF; a message
	// without final CRLF gets one (the line end of its last line).
	want := []string{msg1, strings.ReplaceAll(msg2, "\n", "\r\n"), msg3 + "\r\n"}
	for i, w := range want {
		rc, err := c.Retrieve(ctx, i+1)
		require.NoError(t, err)
		b, err := io.ReadAll(rc)
		require.NoError(t, err)
		require.NoError(t, rc.Close())
		assert.Equal(t, w, string(b))
		if i < 2 {
			assert.Equal(t, list[i].Size, int64(len(b)), "LIST size is what RETR sends")
		}
	}

	rc, err := c.Top(ctx, 1, 1)
	require.NoError(t, err)
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	assert.Equal(t, "Subject: one\r\n\r\nHello\r\n", string(b))

	// A stream left unread is drained by the next command.
	_, err = c.Retrieve(ctx, 1)
	require.NoError(t, err)
	require.NoError(t, c.Noop(ctx))

	require.NoError(t, c.Delete(ctx, 2))
	err = c.Delete(ctx, 2)
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "message 2 already deleted", pe.Text)
	require.NoError(t, c.Reset(ctx))
	require.NoError(t, c.Delete(ctx, 1))
	_, err = c.Retrieve(ctx, 7)
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "RETR", pe.Command)
	require.NoError(t, c.Quit(ctx))

	assert.Equal(t, []string{msg2, msg3}, st.inbox(t, "u@example.org"))
}

func TestClientInUse(t *testing.T) {
	st := threeMessages(t)
	_, addr := startServer(t, st, testOptions())
	ctx := testContext(t)
	a, err := Dial(ctx, addr, ClientOptions{})
	require.NoError(t, err)
	defer a.Close()
	require.NoError(t, a.Auth(ctx, sasl.NewPlainClient("", "u", "pw")))

	b, err := Dial(ctx, addr, ClientOptions{})
	require.NoError(t, err)
	defer b.Close()
	err = b.Auth(ctx, sasl.NewPlainClient("", "u", "pw"))
	var pe *Error
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "IN-USE", pe.Code)
	assert.True(t, pe.Temporary())
	assert.Equal(t, "pop3: AUTH: -ERR [IN-USE] maildrop already locked", err.Error())
}

// TestClientAuthContinuation: a SASL mechanism without initial response
// goes through the "+ " continuation.
func TestClientAuthContinuation(t *testing.T) {
	st := threeMessages(t)
	_, addr := startServer(t, st, testOptions())
	ctx := testContext(t)
	c, err := Dial(ctx, addr, ClientOptions{})
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Auth(ctx, noIRClient{sasl.NewPlainClient("", "u", "pw")}))
	n, _, err := c.Stat(ctx)
	require.NoError(t, err)
	assert.Equal(t, 3, n)
}

// noIRClient withholds the initial response of a SASL client.
type noIRClient struct{ sasl.Client }

func (c noIRClient) Start() (string, []byte, error) {
	mech, _, err := c.Client.Start()
	return mech, nil, err
}

func (c noIRClient) Next(challenge []byte) ([]byte, error) {
	_, ir, err := c.Client.Start()
	return ir, err
}

func TestClientTLS(t *testing.T) {
	st := threeMessages(t)
	cert := testutil.NewCert(t, testutil.CertOptions{})
	opts := testOptions()
	opts.AllowInsecureAuth = false
	opts.TLSConfig = cert.ServerConfig()
	srv := NewServer(st, opts)
	plain, tlsL := testutil.Listen(t), testutil.Listen(t)
	go srv.Serve(plain)
	go srv.ServeTLS(tlsL)
	t.Cleanup(func() { srv.Close() })
	ctx := testContext(t)
	copts := ClientOptions{TLSConfig: &tls.Config{RootCAs: cert.Pool}}

	t.Run("STLS", func(t *testing.T) {
		c, err := Dial(ctx, plain.Addr().String(), copts)
		require.NoError(t, err)
		defer c.Close()
		caps, err := c.Capabilities(ctx)
		require.NoError(t, err)
		assert.Contains(t, caps, "STLS")
		assert.NotContains(t, caps, "USER")
		require.NoError(t, c.StartTLS(ctx, nil))
		assert.True(t, c.IsTLS())
		caps, err = c.Capabilities(ctx)
		require.NoError(t, err)
		assert.NotContains(t, caps, "STLS")
		assert.Contains(t, caps, "USER")
		require.NoError(t, c.Login(ctx, "u", "pw"))
		require.NoError(t, c.Quit(ctx))
	})
	t.Run("implicit", func(t *testing.T) {
		c, err := DialTLS(ctx, tlsL.Addr().String(), copts)
		require.NoError(t, err)
		defer c.Close()
		assert.True(t, c.IsTLS())
		caps, err := c.Capabilities(ctx)
		require.NoError(t, err)
		assert.NotContains(t, caps, "STLS")
		require.NoError(t, c.Login(ctx, "u", "pw"))
		require.NoError(t, c.Quit(ctx))
	})
	t.Run("bad certificate", func(t *testing.T) {
		_, err := DialTLS(ctx, tlsL.Addr().String(), ClientOptions{})
		require.Error(t, err)
	})
}

// TestClientContext: cancelling the context unblocks a command waiting
// for a server that does not answer, and the client is unusable after.
func TestClientContext(t *testing.T) {
	l := testutil.Listen(t)
	defer l.Close()
	go func() {
		conn, err := l.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		conn.Write([]byte("+OK hello\r\n"))
		io.Copy(io.Discard, conn) // never answers
	}()
	ctx := testContext(t)
	c, err := Dial(ctx, l.Addr().String(), ClientOptions{})
	require.NoError(t, err)
	defer c.Close()
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Noop(cctx) }()
	cancel()
	err = <-done
	require.Error(t, err)
	var ne net.Error
	require.True(t, errors.As(err, &ne) && ne.Timeout(), "%v", err)
	require.Error(t, c.Noop(ctx))
}

func TestClientProtocolErrors(t *testing.T) {
	tests := []struct {
		name, server string
		call         func(ctx context.Context, c *Client) error
	}{
		{"garbage reply", "+OK hi\r\nHELLO\r\n", func(ctx context.Context, c *Client) error { return c.Noop(ctx) }},
		{"bad stat", "+OK hi\r\n+OK x y\r\n", func(ctx context.Context, c *Client) error { _, _, err := c.Stat(ctx); return err }},
		{"bad list", "+OK hi\r\n+OK\r\n1 x\r\n.\r\n", func(ctx context.Context, c *Client) error { _, err := c.List(ctx); return err }},
		{"truncated list", "+OK hi\r\n+OK\r\n1 2\r\n", func(ctx context.Context, c *Client) error { _, err := c.List(ctx); return err }},
		{"truncated message", "+OK hi\r\n+OK\r\nabc\r\n", func(ctx context.Context, c *Client) error {
			rc, err := c.Retrieve(ctx, 1)
			if err != nil {
				return err
			}
			_, err = io.ReadAll(rc)
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := testutil.Listen(t)
			defer l.Close()
			go func() {
				conn, err := l.Accept()
				if err != nil {
					return
				}
				conn.Write([]byte(tt.server))
				conn.Close()
			}()
			ctx := testContext(t)
			c, err := Dial(ctx, l.Addr().String(), ClientOptions{})
			require.NoError(t, err)
			defer c.Close()
			err = tt.call(ctx, c)
			require.Error(t, err)
			var pe *Error
			assert.False(t, errors.As(err, &pe), "not a -ERR: %v", err)
		})
	}
}
