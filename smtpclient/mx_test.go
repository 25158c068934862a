package smtpclient_test

import (
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks/resolver"
	"github.com/mailblocks/mailblocks/resolver/dnstest"
	"github.com/mailblocks/mailblocks/smtpclient"
)

// The MX tests resolve through the real resolver against a dnstest server
// whose MX hosts have addresses in 127.0.0.0/8. The SMTP servers listen on
// those addresses with one common random port, passed as Options.Port
// (Linux routes all of 127.0.0.0/8 to the loopback interface). 127.0.0.9
// has no listener: connecting to it is refused.

func newResolver(t *testing.T, dns *dnstest.Server) *resolver.Client {
	return resolver.New(resolver.Options{Servers: []string{dns.Addr()}, Timeout: 2 * time.Second, Attempts: 1})
}

func TestMXRouting(t *testing.T) {
	lns, port := listenSamePort(t, "127.0.0.2", "127.0.0.3", "127.0.0.4")
	greet421 := serveFake(t, lns[0], script{Greeting: "421 4.3.2 Busy"})
	good := serveFake(t, lns[1], script{})
	ehlo550 := serveFake(t, lns[2], script{Reply: map[string]string{"EHLO": "550 5.7.1 Not you"}})

	dns := dnstest.NewServer(t,
		"dest.test. MX 10 mx1.dest.test.",
		"dest.test. MX 20 mx2.dest.test.",
		"dest.test. MX 30 mx3.dest.test.",
		"dest.test. MX 40 mx4.dest.test.",
		"dest.test. MX 50 mx5.dest.test.",
		"mx1.dest.test. A 127.0.0.9", // refused
		"mx2.dest.test. A 127.0.0.2", // 421 greeting
		"mx3.dest.test. A 127.0.0.4", // EHLO refused
		"mx4.dest.test. AAAA ::1",    // IPv6 first, nothing listens ...
		"mx4.dest.test. A 127.0.0.3", // ... then IPv4: accepts
		"mx5.dest.test. A 127.0.0.3",
		"implicit.test. A 127.0.0.3",
		"nullmx.test. MX 0 .",
		"noaddr.test. TXT \"v=spf1 -all\"",
		"allbad.test. MX 10 mx1.dest.test.",
		"allbad.test. MX 20 mx2.dest.test.",
		"permbad.test. MX 10 mx3.dest.test.",
		"servfail.test. A 127.0.0.3",
		"capped.test. MX 10 mx1.dest.test.",
		"capped.test. MX 20 mx2.dest.test.",
		"capped.test. MX 30 mx4.dest.test.",
	)
	dns.SetBehavior("servfail.test", dnstest.ServFail)
	res := newResolver(t, dns)

	t.Run("fallback through the MX list", func(t *testing.T) {
		c := newClient(t, smtpclient.Options{Resolver: res, Port: port})
		st := deliver(t, c, envelope("a@sender.test", "b@dest.test", "c@DEST.test"), testBody)
		for _, s := range st {
			require.NoError(t, s.Err)
			assert.Equal(t, "mx4.dest.test", s.RemoteHost)
		}
		require.Len(t, good.Messages(), 1)
		assert.Equal(t, []string{"<b@dest.test>", "<c@DEST.test>"}, good.Messages()[0].Rcpts)
		assert.Equal(t, 1, greet421.Conns())
		assert.Equal(t, 1, ehlo550.Conns())
	})
	t.Run("implicit MX", func(t *testing.T) {
		c := newClient(t, smtpclient.Options{Resolver: res, Port: port})
		st := deliver(t, c, envelope("a@sender.test", "b@implicit.test"), testBody)
		require.NoError(t, st[0].Err)
		assert.Equal(t, "implicit.test", st[0].RemoteHost)
	})
	t.Run("several domains", func(t *testing.T) {
		c := newClient(t, smtpclient.Options{Resolver: res, Port: port})
		st := deliver(t, c, envelope("a@sender.test", "b@implicit.test", "x@nullmx.test", "c@dest.test"), testBody)
		require.NoError(t, st[0].Err)
		require.Error(t, st[1].Err)
		require.NoError(t, st[2].Err)
	})

	failures := []struct {
		name, rcpt string
		enh        string
		temp       bool
		opts       smtpclient.Options
	}{
		{"null MX", "b@nullmx.test", "5.1.10", false, smtpclient.Options{}},
		{"NXDOMAIN", "b@nosuch.test", "5.1.2", false, smtpclient.Options{}},
		{"no MX and no address", "b@noaddr.test", "5.1.2", false, smtpclient.Options{}},
		{"SERVFAIL", "b@servfail.test", "4.4.3", true, smtpclient.Options{}},
		{"every host fails, one temporarily", "b@allbad.test", "4.3.2", true, smtpclient.Options{}},
		{"every host fails permanently", "b@permbad.test", "5.7.1", false, smtpclient.Options{}},
		{"host cap", "b@capped.test", "4.3.2", true, smtpclient.Options{MaxHosts: 2}},
	}
	for _, tt := range failures {
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.opts
			opts.Resolver, opts.Port = res, port
			c := newClient(t, opts)
			before := len(good.Messages())
			st := deliver(t, c, envelope("a@sender.test", tt.rcpt), testBody)
			ce, me := reply(t, st[0].Err)
			assert.Equal(t, tt.enh, me.Enhanced.String(), me.Error())
			if ce.Command == smtpclient.CmdDNS || ce.Command == smtpclient.CmdConnect {
				assert.Empty(t, st[0].RemoteHost, "no host answered")
			}
			assert.Equal(t, tt.temp, me.Temporary())
			assert.Len(t, good.Messages(), before)
		})
	}
}

func TestMXIPv6(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	srv := serveFake(t, ln, script{})
	dns := dnstest.NewServer(t,
		"v6.test. MX 10 mx.v6.test.",
		"mx.v6.test. AAAA ::1",
	)
	c := newClient(t, smtpclient.Options{Resolver: newResolver(t, dns), Port: srv.Port()})
	st := deliver(t, c, envelope("a@sender.test", "b@v6.test", "c@[IPv6:::1]"), testBody)
	require.NoError(t, st[0].Err)
	require.NoError(t, st[1].Err)
	assert.Len(t, srv.Messages(), 2)
}

// TestMXWithMockResolver shows the consumer interface accepting
// resolver.Mock as well.
func TestMXWithMockResolver(t *testing.T) {
	srv := startFake(t, "127.0.0.1:0", script{})
	m := &resolver.Mock{
		MX: map[string][]resolver.MX{"mock.test": {{Host: "mx.mock.test", Pref: 10}}},
		A:  map[string][]string{"mx.mock.test": {"127.0.0.1"}},
	}
	c := newClient(t, smtpclient.Options{Resolver: m, Port: srv.Port()})
	st := deliver(t, c, envelope("a@sender.test", "b@mock.test"), testBody)
	require.NoError(t, st[0].Err)
	assert.Equal(t, "mx.mock.test", st[0].RemoteHost)
}

// TestIDNDomain: a U-label domain is looked up as A-labels (RFC 5890).
func TestIDNDomain(t *testing.T) {
	srv := startFake(t, "127.0.0.1:0", script{Ext: []string{"SMTPUTF8", "8BITMIME"}})
	m := &resolver.Mock{
		MX: map[string][]resolver.MX{"xn--bcher-kva.test": {{Host: "mx.xn--bcher-kva.test", Pref: 10}}},
		A:  map[string][]string{"mx.xn--bcher-kva.test": {"127.0.0.1"}},
	}
	c := newClient(t, smtpclient.Options{Resolver: m, Port: srv.Port()})
	env := envelope("a@sender.test", "b@Bücher.test")
	env.SMTPUTF8 = true
	st := deliver(t, c, env, testBody)
	require.NoError(t, st[0].Err)
	assert.Equal(t, "mx.xn--bcher-kva.test", st[0].RemoteHost)
	require.Len(t, srv.Messages(), 1)
	assert.Equal(t, []string{"<b@Bücher.test>"}, srv.Messages()[0].Rcpts)
	assert.Contains(t, srv.Messages()[0].From, " SMTPUTF8")

	// To a server without SMTPUTF8, an envelope not flagged SMTPUTF8 whose
	// only non-ASCII is in domains goes out with A-labels.
	srv7 := startFake(t, "127.0.0.1:0", script{Ext: []string{"8BITMIME"}})
	c = newClient(t, smtpclient.Options{Resolver: m, Port: srv7.Port()})
	env = envelope("a@Grüße.test", "b@Bücher.test")
	st = deliver(t, c, env, testBody)
	require.NoError(t, st[0].Err)
	require.Len(t, srv7.Messages(), 1)
	assert.Equal(t, []string{"<b@xn--bcher-kva.test>"}, srv7.Messages()[0].Rcpts)
	assert.Equal(t, "<a@xn--gre-6ka8l.test> BODY=8BITMIME", srv7.Messages()[0].From)
}

// TestMXTLS: certificates are verified against the MX host name; a
// REQUIRETLS message skips an MX without REQUIRETLS and goes to the next.
func TestMXTLS(t *testing.T) {
	cert, roots := testCert(t, "mx1.req.test", "mx2.req.test")
	tcfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	lns, port := listenSamePort(t, "127.0.0.2", "127.0.0.3")
	mx1 := serveFake(t, lns[0], script{Ext: []string{"STARTTLS", "8BITMIME"}, TLS: tcfg})
	mx2 := serveFake(t, lns[1], script{Ext: []string{"STARTTLS", "REQUIRETLS"}, TLS: tcfg})
	dns := dnstest.NewServer(t,
		"req.test. MX 10 mx1.req.test.",
		"req.test. MX 20 mx2.req.test.",
		"mx1.req.test. A 127.0.0.2",
		"mx2.req.test. A 127.0.0.3",
		"wrongname.test. MX 10 other.wrongname.test.",
		"other.wrongname.test. A 127.0.0.2",
	)
	verify := func(string) smtpclient.TLSPolicy { return smtpclient.TLSVerify }
	c := newClient(t, smtpclient.Options{Resolver: newResolver(t, dns), Port: port, Policy: verify,
		TLSConfig: &tls.Config{RootCAs: roots}})

	st := deliver(t, c, envelope("a@sender.test", "b@req.test"), testBody)
	require.NoError(t, st[0].Err)
	assert.Equal(t, "mx1.req.test", st[0].RemoteHost)
	require.Len(t, mx1.Messages(), 1)
	assert.True(t, mx1.Messages()[0].TLS)

	env := envelope("a@sender.test", "b@req.test")
	env.RequireTLS = true
	st = deliver(t, c, env, testBody)
	require.NoError(t, st[0].Err)
	assert.Equal(t, "mx2.req.test", st[0].RemoteHost)
	require.Len(t, mx2.Messages(), 1)
	assert.Contains(t, mx2.Messages()[0].From, "REQUIRETLS")
	assert.Len(t, mx1.Messages(), 1, "nothing more went to the MX without REQUIRETLS")

	// The certificate does not name the MX host: verification fails, and
	// under a required policy that is a temporary failure.
	st = deliver(t, c, envelope("a@sender.test", "b@wrongname.test"), testBody)
	_, me := reply(t, st[0].Err)
	assert.Equal(t, "4.7.5", me.Enhanced.String())
	assert.Len(t, mx1.Messages(), 1)
}
