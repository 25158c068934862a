package smtpclient_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks"
	"github.com/mailblocks/mailblocks/smtpclient"
)

func TestSizeLimit(t *testing.T) {
	srv := startFake(t, "127.0.0.1:0", script{Ext: []string{"SIZE 20"}})
	c := newClient(t, smtpclient.Options{Port: srv.Port()})
	st := deliver(t, c, envelope("a@sender.test", literal("b")), testBody)
	ce, me := reply(t, st[0].Err)
	assert.Equal(t, "5.3.4", me.Enhanced.String())
	assert.False(t, me.Temporary())
	assert.Equal(t, smtpclient.CmdLocal, ce.Command)
	assert.Contains(t, me.Message, "20 bytes")
	assert.False(t, containsPrefix(srv.Commands(), "MAIL"), "MAIL must not be sent")

	// SIZE without a limit, or a large enough one, passes.
	srv = startFake(t, "127.0.0.1:0", script{Ext: []string{"SIZE"}})
	c = newClient(t, smtpclient.Options{Port: srv.Port()})
	st = deliver(t, c, envelope("a@sender.test", literal("b")), testBody)
	require.NoError(t, st[0].Err)
}

func TestSMTPUTF8(t *testing.T) {
	env := envelope("ålice@sender.test", literal("b"))
	env.SMTPUTF8 = true

	srv := startFake(t, "127.0.0.1:0", script{Ext: []string{"8BITMIME"}})
	c := newClient(t, smtpclient.Options{Port: srv.Port()})
	st := deliver(t, c, env, testBody)
	_, me := reply(t, st[0].Err)
	assert.ErrorIs(t, st[0].Err, mailblocks.ErrNeedsSMTPUTF8)
	assert.False(t, me.Temporary())
	assert.Contains(t, me.Message, "does not support it")
	assert.Empty(t, srv.Messages())

	// A non-ASCII address needs SMTPUTF8 even when the flag is missing.
	env2 := envelope("a@sender.test", literal("bø"))
	st = deliver(t, c, env2, testBody)
	assert.ErrorIs(t, st[0].Err, mailblocks.ErrNeedsSMTPUTF8)

	srv = startFake(t, "127.0.0.1:0", script{Ext: []string{"8BITMIME", "SMTPUTF8"}})
	c = newClient(t, smtpclient.Options{Port: srv.Port()})
	st = deliver(t, c, env, testBody)
	require.NoError(t, st[0].Err)
	require.Len(t, srv.Messages(), 1)
	assert.Contains(t, srv.Messages()[0].From, " SMTPUTF8")
}

func TestEightBitToSevenBitServer(t *testing.T) {
	// Sent anyway, as Postfix does; no BODY parameter since the server
	// does not know it.
	srv := startFake(t, "127.0.0.1:0", script{Ext: []string{}})
	c := newClient(t, smtpclient.Options{Port: srv.Port()})
	env := envelope("a@sender.test", literal("b"))
	env.Body = mailblocks.Body8BitMIME
	body := "Subject: caf\xc3\xa9\r\n\r\ncaf\xc3\xa9\r\n"
	st := deliver(t, c, env, body)
	require.NoError(t, st[0].Err)
	require.Len(t, srv.Messages(), 1)
	assert.Equal(t, "<a@sender.test>", srv.Messages()[0].From)
	assert.Equal(t, body, srv.Messages()[0].Data)

	env.Body = mailblocks.BodyBinaryMIME
	st = deliver(t, c, env, body)
	_, me := reply(t, st[0].Err)
	assert.Equal(t, "5.6.3", me.Enhanced.String())
}

func TestDSNParameters(t *testing.T) {
	env := envelope("a@sender.test", literal("b"), literal("c"))
	env.Return = mailblocks.ReturnHeaders
	env.EnvelopeID = "QQ314159"
	env.Recipients[0].Notify = []mailblocks.DSNNotify{mailblocks.NotifySuccess, mailblocks.NotifyFailure}
	env.Recipients[0].OriginalRecipient = "rfc822;orig@dest.test"
	env.Recipients[1].Notify = []mailblocks.DSNNotify{mailblocks.NotifyNever}

	t.Run("advertised", func(t *testing.T) {
		srv := startFake(t, "127.0.0.1:0", script{Ext: []string{"DSN", "8BITMIME"}})
		c := newClient(t, smtpclient.Options{Port: srv.Port()})
		st := deliver(t, c, env, testBody)
		for _, s := range st {
			require.NoError(t, s.Err)
			assert.True(t, s.RemoteDSN)
		}
		m := srv.Messages()[0]
		assert.Equal(t, "<a@sender.test> BODY=8BITMIME RET=HDRS ENVID=QQ314159", m.From)
		assert.Equal(t, []string{
			"<b@[127.0.0.1]> NOTIFY=SUCCESS,FAILURE ORCPT=RFC822;orig@dest.test",
			"<c@[127.0.0.1]> NOTIFY=NEVER",
		}, m.Rcpts)
	})
	t.Run("not advertised", func(t *testing.T) {
		srv := startFake(t, "127.0.0.1:0", script{Ext: []string{"8BITMIME"}})
		c := newClient(t, smtpclient.Options{Port: srv.Port()})
		st := deliver(t, c, env, testBody)
		for _, s := range st {
			require.NoError(t, s.Err)
			assert.False(t, s.RemoteDSN)
		}
		m := srv.Messages()[0]
		assert.Equal(t, "<a@sender.test> BODY=8BITMIME", m.From)
		assert.Equal(t, []string{"<b@[127.0.0.1]>", "<c@[127.0.0.1]>"}, m.Rcpts)
	})
}

func TestOpportunisticSTARTTLS(t *testing.T) {
	cert, _ := testCert(t, "untrusted.test")
	srv := startFake(t, "127.0.0.1:0", script{
		Ext: []string{"8BITMIME", "STARTTLS"},
		TLS: &tls.Config{Certificates: []tls.Certificate{cert}},
	})
	c := newClient(t, smtpclient.Options{Port: srv.Port()})
	st := deliver(t, c, envelope("a@sender.test", literal("b")), testBody)
	require.NoError(t, st[0].Err)
	require.Len(t, srv.Messages(), 1)
	assert.True(t, srv.Messages()[0].TLS, "the message went over TLS even though the certificate does not verify")
	// EHLO before and after STARTTLS, with our name both times.
	var ehlos int
	for _, cmd := range srv.Commands() {
		if cmd == "EHLO client.test" {
			ehlos++
		}
	}
	assert.Equal(t, 2, ehlos)
}

func TestSTARTTLSFailureFallsBackToClearText(t *testing.T) {
	srv := startFake(t, "127.0.0.1:0", script{Ext: []string{"STARTTLS"}, BadTLS: true})
	c := newClient(t, smtpclient.Options{Port: srv.Port()})
	st := deliver(t, c, envelope("a@sender.test", literal("b")), testBody)
	require.NoError(t, st[0].Err)
	require.Len(t, srv.Messages(), 1)
	assert.False(t, srv.Messages()[0].TLS)
	assert.Equal(t, 2, srv.Conns(), "one failed TLS attempt, one clear-text session")
}

func TestRequiredTLS(t *testing.T) {
	cert, roots := testCert(t, "127.0.0.1")
	policy := func(string) smtpclient.TLSPolicy { return smtpclient.TLSVerify }

	t.Run("no STARTTLS", func(t *testing.T) {
		srv := startFake(t, "127.0.0.1:0", script{Ext: []string{"8BITMIME"}})
		c := newClient(t, smtpclient.Options{Port: srv.Port(), Policy: policy})
		st := deliver(t, c, envelope("a@sender.test", literal("b")), testBody)
		_, me := reply(t, st[0].Err)
		assert.True(t, me.Temporary())
		assert.Equal(t, 4, me.Enhanced[0])
		assert.Equal(t, 7, me.Enhanced[1])
		assert.Empty(t, srv.Messages())
		assert.False(t, containsPrefix(srv.Commands(), "MAIL"))
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		other, _ := testCert(t, "127.0.0.1")
		srv := startFake(t, "127.0.0.1:0", script{Ext: []string{"STARTTLS"}, TLS: &tls.Config{Certificates: []tls.Certificate{other}}})
		c := newClient(t, smtpclient.Options{Port: srv.Port(), Policy: policy, TLSConfig: &tls.Config{RootCAs: roots}})
		st := deliver(t, c, envelope("a@sender.test", literal("b")), testBody)
		_, me := reply(t, st[0].Err)
		assert.Equal(t, "4.7.5", me.Enhanced.String())
		assert.Empty(t, srv.Messages())
		assert.Equal(t, 1, srv.Conns(), "no clear-text retry under a required policy")
	})
	t.Run("verified", func(t *testing.T) {
		srv := startFake(t, "127.0.0.1:0", script{Ext: []string{"STARTTLS"}, TLS: &tls.Config{Certificates: []tls.Certificate{cert}}})
		c := newClient(t, smtpclient.Options{Port: srv.Port(), Policy: policy, TLSConfig: &tls.Config{RootCAs: roots}})
		st := deliver(t, c, envelope("a@sender.test", literal("b")), testBody)
		require.NoError(t, st[0].Err)
		require.Len(t, srv.Messages(), 1)
		assert.True(t, srv.Messages()[0].TLS)
	})
}

func TestREQUIRETLS(t *testing.T) {
	cert, roots := testCert(t, "127.0.0.1")
	tcfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	env := envelope("a@sender.test", literal("b"))
	env.RequireTLS = true
	tests := []struct {
		name string
		scr  script
		ok   bool
	}{
		{"no TLS", script{Ext: []string{"REQUIRETLS"}}, false},
		{"TLS without REQUIRETLS", script{Ext: []string{"STARTTLS"}, TLS: tcfg}, false},
		{"TLS and REQUIRETLS", script{Ext: []string{"STARTTLS", "REQUIRETLS"}, TLS: tcfg}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startFake(t, "127.0.0.1:0", tt.scr)
			c := newClient(t, smtpclient.Options{Port: srv.Port(), TLSConfig: &tls.Config{RootCAs: roots}})
			st := deliver(t, c, env, testBody)
			if tt.ok {
				require.NoError(t, st[0].Err)
				require.Len(t, srv.Messages(), 1)
				assert.Contains(t, srv.Messages()[0].From, " REQUIRETLS")
				return
			}
			_, me := reply(t, st[0].Err)
			assert.False(t, containsPrefix(srv.Commands(), "MAIL"))
			assert.Equal(t, "5.7.30", me.Enhanced.String())
			assert.False(t, me.Temporary())
		})
	}
}

func TestConnectionReuse(t *testing.T) {
	const n = 5
	srv := startFake(t, "127.0.0.1:0", script{})
	c := newClient(t, smtpclient.Options{Port: srv.Port()})
	for i := range n {
		st := deliver(t, c, envelope(fmt.Sprintf("s%d@sender.test", i), literal("b")), testBody)
		require.NoError(t, st[0].Err)
	}
	assert.Len(t, srv.Messages(), n)
	assert.Equal(t, 1, srv.Conns())
	assert.EqualValues(t, 1, c.Dials())
	var rsets int
	for _, cmd := range srv.Commands() {
		if cmd == "RSET" {
			rsets++
		}
	}
	assert.Equal(t, n-1, rsets, "RSET before each reuse")

	// MaxMessagesPerConn 1 disables reuse.
	srv2 := startFake(t, "127.0.0.1:0", script{})
	c2 := newClient(t, smtpclient.Options{Port: srv2.Port(), MaxMessagesPerConn: 1})
	for range n {
		st := deliver(t, c2, envelope("a@sender.test", literal("b")), testBody)
		require.NoError(t, st[0].Err)
	}
	assert.Equal(t, n, srv2.Conns())

	// A cap of 2 messages per connection.
	srv3 := startFake(t, "127.0.0.1:0", script{})
	c3 := newClient(t, smtpclient.Options{Port: srv3.Port(), MaxMessagesPerConn: 2})
	for range n {
		st := deliver(t, c3, envelope("a@sender.test", literal("b")), testBody)
		require.NoError(t, st[0].Err)
	}
	assert.Equal(t, 3, srv3.Conns())
}

// TestReuseAfterServerClosed: a pooled session that the server has closed
// fails its RSET and is replaced by a new connection.
func TestReuseAfterServerClosed(t *testing.T) {
	srv := startFake(t, "127.0.0.1:0", script{Reply: map[string]string{"RSET": "421 4.4.2 Idle too long"}})
	c := newClient(t, smtpclient.Options{Port: srv.Port()})
	for range 3 {
		st := deliver(t, c, envelope("a@sender.test", literal("b")), testBody)
		require.NoError(t, st[0].Err)
	}
	assert.Len(t, srv.Messages(), 3)
	assert.Equal(t, 3, srv.Conns())
}

// TestReuseAfterRefusedTransaction: after a transaction ends with every
// recipient refused, RSET clears it and the session carries the next one.
func TestReuseAfterRefusedTransaction(t *testing.T) {
	srv := startFake(t, "127.0.0.1:0", script{Rcpt: map[string]string{"bad@[127.0.0.1]": "550 5.1.1 Unknown"}})
	c := newClient(t, smtpclient.Options{Port: srv.Port()})
	st := deliver(t, c, envelope("a@sender.test", literal("bad")), testBody)
	require.Error(t, st[0].Err)
	st = deliver(t, c, envelope("a@sender.test", literal("good")), testBody)
	require.NoError(t, st[0].Err)
	assert.Equal(t, 1, srv.Conns())
	assert.Len(t, srv.Messages(), 1)
}

// TestConcurrentDeliveries: the client is shared by concurrent deliveries
// (the queue runs several per domain); the pool hands each session to one
// delivery at a time.
func TestConcurrentDeliveries(t *testing.T) {
	srv := startFake(t, "127.0.0.1:0", script{})
	c := newClient(t, smtpclient.Options{Port: srv.Port(), MaxIdlePerHost: 4})
	const workers, each = 4, 5
	errs := make(chan error, workers*each)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				env := envelope(fmt.Sprintf("w%d-%d@sender.test", w, i), literal("b"))
				st := c.Deliver(context.Background(), env, strings.NewReader(testBody), int64(len(testBody)))
				errs <- st[0].Err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	assert.Len(t, srv.Messages(), workers*each)
	assert.LessOrEqual(t, srv.Conns(), workers)
}

// TestIdleTimeout: an idle pooled session is closed with QUIT after
// IdleTimeout, and the next message opens a new one.
func TestIdleTimeout(t *testing.T) {
	srv := startFake(t, "127.0.0.1:0", script{})
	c := newClient(t, smtpclient.Options{Port: srv.Port(), IdleTimeout: 50 * time.Millisecond})
	st := deliver(t, c, envelope("a@sender.test", literal("b")), testBody)
	require.NoError(t, st[0].Err)
	require.Eventually(t, func() bool { return containsPrefix(srv.Commands(), "QUIT") }, 20*time.Second, 10*time.Millisecond)
	st = deliver(t, c, envelope("a@sender.test", literal("b")), testBody)
	require.NoError(t, st[0].Err)
	assert.Equal(t, 2, srv.Conns())
	assert.Len(t, srv.Messages(), 2)
}
