package resolver_test

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks/resolver"
	"github.com/mailblocks/mailblocks/resolver/dnstest"
)

const soa = "example.test. 3600 IN SOA ns.example.test. hostmaster.example.test. 1 3600 600 86400 300"

func newClient(servers ...string) *resolver.Client {
	return resolver.New(resolver.Options{Servers: servers, Timeout: 5 * time.Second, Attempts: 2})
}

func kindOf(t *testing.T, err error) resolver.Kind {
	t.Helper()
	var re *resolver.Error
	require.ErrorAs(t, err, &re)
	return re.Kind
}

func TestClientLookups(t *testing.T) {
	srv := dnstest.NewServer(t, soa,
		"example.test. 600 IN MX 20 MX2.example.test.",
		"example.test. 900 IN MX 10 mx1.example.test.",
		"example.test. 300 IN TXT \"v=spf1 \" \"-all\"",
		`odd.example.test. 300 IN TXT "a\"b\\c;d" "\195\169"`,
		"mx1.example.test. 120 IN A 192.0.2.1",
		"mx1.example.test. 120 IN AAAA 2001:db8::1",
		"v4only.example.test. IN A 192.0.2.4",
		"null.example.test. IN MX 0 .",
		"1.2.0.192.in-addr.arpa. IN PTR mx1.example.test.",
		"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa. IN PTR MX1.example.test.",
		"_25._tcp.mx1.example.test. IN TLSA 3 1 1 0A0b0c",
	)
	srv.SetAuthentic("example.test", true)
	r := newClient(srv.Addr())
	ctx := context.Background()

	mx, info, err := r.LookupMX(ctx, "Example.Test.")
	require.NoError(t, err)
	assert.Equal(t, []resolver.MX{{Host: "mx1.example.test", Pref: 10}, {Host: "mx2.example.test", Pref: 20}}, mx)
	assert.Equal(t, resolver.Info{Authentic: true, TTL: 600 * time.Second}, info)
	assert.True(t, srv.Log()[0].DO, "queries carry the DO bit")

	_, _, err = r.LookupMX(ctx, "null.example.test")
	assert.ErrorIs(t, err, resolver.ErrNullMX)
	assert.False(t, resolver.IsTemporary(err))

	txt, info, err := r.LookupTXT(ctx, "example.test")
	require.NoError(t, err)
	assert.Equal(t, []string{"v=spf1 -all"}, txt)
	assert.True(t, info.Authentic)
	txt, info, err = r.LookupTXT(ctx, "odd.example.test")
	require.NoError(t, err)
	assert.Equal(t, []string{"a\"b\\c;d\u00e9"}, txt)
	assert.False(t, info.Authentic)

	ips, info, err := r.LookupIP(ctx, "mx1.example.test")
	require.NoError(t, err)
	assert.Equal(t, []netip.Addr{netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("192.0.2.1")}, ips)
	assert.Equal(t, 120*time.Second, info.TTL)
	ips, _, err = r.LookupIP(ctx, "v4only.example.test")
	require.NoError(t, err)
	assert.Equal(t, []netip.Addr{netip.MustParseAddr("192.0.2.4")}, ips)

	ptr, _, err := r.LookupPTR(ctx, netip.MustParseAddr("::ffff:192.0.2.1"))
	require.NoError(t, err)
	assert.Equal(t, []string{"mx1.example.test"}, ptr)
	ptr, _, err = r.LookupPTR(ctx, netip.MustParseAddr("2001:db8::1"))
	require.NoError(t, err)
	assert.Equal(t, []string{"mx1.example.test"}, ptr)
	_, _, err = r.LookupPTR(ctx, netip.Addr{})
	assert.ErrorIs(t, err, resolver.ErrBadName)

	tlsa, _, err := r.LookupTLSA(ctx, 25, "tcp", "mx1.example.test")
	require.NoError(t, err)
	assert.Equal(t, []resolver.TLSA{{Usage: 3, Selector: 1, MatchingType: 1, Data: []byte{10, 11, 12}}}, tlsa)
}

func TestClientNegative(t *testing.T) {
	srv := dnstest.NewServer(t, soa, "a.example.test. 30 IN A 192.0.2.1", "x.y.example.test. IN A 192.0.2.2")
	r := newClient(srv.Addr())
	ctx := context.Background()

	tests := []struct {
		name, host string
		kind       resolver.Kind
		ttl        time.Duration
	}{
		{"nxdomain", "nope.example.test", resolver.KindNXDomain, 300 * time.Second},
		{"nodata", "a.example.test", resolver.KindNoData, 300 * time.Second},
		{"empty non-terminal", "y.example.test", resolver.KindNoData, 300 * time.Second},
		{"no soa, not cacheable", "elsewhere.invalid", resolver.KindNXDomain, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, info, err := r.LookupMX(ctx, tt.host)
			require.Error(t, err)
			assert.Equal(t, tt.kind, kindOf(t, err))
			assert.True(t, resolver.IsNotFound(err))
			assert.False(t, resolver.IsTemporary(err))
			if tt.ttl != 0 {
				assert.Equal(t, tt.ttl, info.TTL)
			}
		})
	}
	// The synthetic SOA of dnstest (TTL 60) covers names outside any zone.
	_, info, err := r.LookupTXT(ctx, "elsewhere.invalid")
	require.Error(t, err)
	assert.Equal(t, 60*time.Second, info.TTL)

	_, _, err = r.LookupIP(ctx, "nope.example.test")
	assert.True(t, resolver.IsNXDomain(err))
	_, _, err = r.LookupIP(ctx, "y.example.test")
	assert.True(t, resolver.IsNotFound(err))
	assert.False(t, resolver.IsNXDomain(err))

	_, _, err = r.LookupMX(ctx, "bad..name")
	assert.ErrorIs(t, err, resolver.ErrBadName)

	// U-labels are queried as A-labels.
	_, _, err = r.LookupMX(ctx, "bücher.example.test")
	assert.True(t, resolver.IsNXDomain(err))
	log := srv.Log()
	assert.Equal(t, "xn--bcher-kva.example.test.", log[len(log)-1].Name)
}

func TestClientTruncationFallsBackToTCP(t *testing.T) {
	srv := dnstest.NewServer(t, "example.test. IN MX 10 mx.example.test.")
	srv.SetBehavior(dnstest.AllNames, dnstest.TruncateUDP)
	r := newClient(srv.Addr())
	mx, _, err := r.LookupMX(context.Background(), "example.test")
	require.NoError(t, err)
	assert.Equal(t, []resolver.MX{{Host: "mx.example.test", Pref: 10}}, mx)
	log := srv.Log()
	require.Len(t, log, 2)
	assert.Equal(t, "udp", log[0].Net)
	assert.Equal(t, "tcp", log[1].Net)
}

func TestClientLargeAnswerOverTCP(t *testing.T) {
	srv := dnstest.NewServer(t)
	for i := range 100 {
		require.NoError(t, srv.Add("big.test. IN A 10.0.0."+itoa(i)))
	}
	// A small EDNS0 buffer makes the server truncate.
	r := resolver.New(resolver.Options{Servers: []string{srv.Addr()}, Timeout: 5 * time.Second, UDPSize: 512})
	ips, _, err := r.LookupIP(context.Background(), "big.test")
	require.NoError(t, err)
	assert.Len(t, ips, 100)
}

func TestClientServerFailures(t *testing.T) {
	good := dnstest.NewServer(t, "example.test. IN MX 10 mx.example.test.")

	tests := []struct {
		name     string
		behavior dnstest.Behavior
		kind     resolver.Kind
		// timeout is what the client waits for each server: the whole
		// wait for the silent server, generous for the others.
		timeout time.Duration
	}{
		{"servfail", dnstest.ServFail, resolver.KindServFail, 5 * time.Second},
		{"refused", dnstest.Refused, resolver.KindRefused, 5 * time.Second},
		{"never answers", dnstest.Drop, resolver.KindTimeout, 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := dnstest.NewServer(t, "example.test. IN MX 10 mx.example.test.")
			bad.SetBehavior(dnstest.AllNames, tt.behavior)

			// Alone, the failing server gives a temporary error after
			// Attempts tries.
			r := resolver.New(resolver.Options{Servers: []string{bad.Addr()}, Timeout: tt.timeout, Attempts: 2})
			_, _, err := r.LookupMX(context.Background(), "example.test")
			require.Error(t, err)
			assert.True(t, resolver.IsTemporary(err))
			assert.Equal(t, tt.kind, kindOf(t, err))
			assert.Equal(t, 2, bad.Queries())

			// Followed by a good one, the lookup succeeds.
			before := good.Queries()
			r = resolver.New(resolver.Options{Servers: []string{bad.Addr(), good.Addr()}, Timeout: tt.timeout})
			mx, _, err := r.LookupMX(context.Background(), "example.test")
			require.NoError(t, err)
			assert.Len(t, mx, 1)
			assert.Equal(t, 3, bad.Queries())
			assert.Equal(t, before+1, good.Queries())
		})
	}
}

func TestClientNoServer(t *testing.T) {
	// A closed port: ICMP port unreachable or a timeout, either way
	// temporary.
	srv := dnstest.NewServer(t)
	addr := srv.Addr()
	require.NoError(t, srv.Close())
	r := resolver.New(resolver.Options{Servers: []string{addr}, Timeout: 2 * time.Second, Attempts: 1})
	_, _, err := r.LookupMX(context.Background(), "example.test")
	require.Error(t, err)
	assert.True(t, resolver.IsTemporary(err))
}

func TestClientContext(t *testing.T) {
	srv := dnstest.NewServer(t)
	srv.SetBehavior(dnstest.AllNames, dnstest.Drop)
	r := resolver.New(resolver.Options{Servers: []string{srv.Addr()}, Timeout: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err := r.LookupMX(ctx, "example.test")
	assert.ErrorIs(t, err, context.Canceled)
	assert.True(t, resolver.IsTemporary(err))
	assert.Equal(t, 0, srv.Queries())

	ctx, cancel = context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, _, err = r.LookupMX(ctx, "example.test")
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Equal(t, resolver.KindTimeout, kindOf(t, err))
}

func TestClientCNAME(t *testing.T) {
	srv := dnstest.NewServer(t, soa,
		"alias.example.test. 100 IN CNAME middle.example.test.",
		"middle.example.test. 50 IN CNAME mail.example.test.",
		"mail.example.test. 300 IN A 192.0.2.7",
		"mail.example.test. 300 IN MX 10 mail.example.test.",
		"dangling.example.test. 300 IN CNAME gone.example.test.",
		"loop1.example.test. IN CNAME loop2.example.test.",
		"loop2.example.test. IN CNAME loop1.example.test.",
	)
	for i := range 12 {
		require.NoError(t, srv.Add("chain"+itoa(i)+".example.test. IN CNAME chain"+itoa(i+1)+".example.test."))
	}
	require.NoError(t, srv.Add("chain12.example.test. IN A 192.0.2.12"))
	for _, chase := range []bool{true, false} {
		name := "server follows"
		if !chase {
			name = "client follows"
		}
		t.Run(name, func(t *testing.T) {
			srv.SetChaseCNAME(chase)
			r := newClient(srv.Addr())
			ctx := context.Background()

			before := srv.Queries()
			ips, info, err := r.LookupIP(ctx, "alias.example.test")
			require.NoError(t, err)
			assert.Equal(t, []netip.Addr{netip.MustParseAddr("192.0.2.7")}, ips)
			assert.Equal(t, 50*time.Second, info.TTL, "the smallest TTL of the chain")
			if chase {
				assert.Equal(t, before+2, srv.Queries())
			} else {
				assert.Equal(t, before+6, srv.Queries())
			}

			mx, _, err := r.LookupMX(ctx, "alias.example.test")
			require.NoError(t, err)
			assert.Equal(t, []resolver.MX{{Host: "mail.example.test", Pref: 10}}, mx)

			_, _, err = r.LookupTXT(ctx, "alias.example.test")
			assert.Equal(t, resolver.KindNoData, kindOf(t, err))
			_, _, err = r.LookupIP(ctx, "dangling.example.test")
			assert.True(t, resolver.IsNXDomain(err))

			_, _, err = r.LookupIP(ctx, "loop1.example.test")
			assert.Equal(t, resolver.KindCNAMELoop, kindOf(t, err))
			assert.True(t, resolver.IsTemporary(err))

			_, _, err = r.LookupMX(ctx, "chain0.example.test")
			assert.Equal(t, resolver.KindCNAMELoop, kindOf(t, err), "chain longer than MaxCNAMEChain")
			long := resolver.New(resolver.Options{Servers: []string{srv.Addr()}, MaxCNAMEChain: 20})
			ips, _, err = long.LookupIP(ctx, "chain0.example.test")
			require.NoError(t, err)
			assert.Equal(t, []netip.Addr{netip.MustParseAddr("192.0.2.12")}, ips)
		})
	}
}

func TestNewReadsResolvConf(t *testing.T) {
	path := filepath.Join(t.TempDir(), "resolv.conf")
	require.NoError(t, os.WriteFile(path, []byte("# test\nnameserver 192.0.2.53\nnameserver 2001:db8::53\nsearch example.test\noptions timeout:3 attempts:4\n"), 0o644))
	r := resolver.New(resolver.Options{ResolvConf: path})
	assert.Equal(t, []string{"192.0.2.53:53", "[2001:db8::53]:53"}, r.Servers())

	r = resolver.New(resolver.Options{ResolvConf: filepath.Join(t.TempDir(), "missing")})
	assert.Equal(t, []string{"127.0.0.1:53"}, r.Servers())

	r = resolver.New(resolver.Options{Servers: []string{"192.0.2.1", "[2001:db8::2]", "192.0.2.3:5353"}})
	assert.Equal(t, []string{"192.0.2.1:53", "[2001:db8::2]:53", "192.0.2.3:5353"}, r.Servers())
}

func itoa(i int) string { return strconv.Itoa(i) }
