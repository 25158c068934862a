package resolver_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks/internal/testutil"
	"github.com/mailblocks/mailblocks/resolver"
	"github.com/mailblocks/mailblocks/resolver/dnstest"
)

// TestCacheOverTheWire: TTL expiry and RFC 2308 negative caching of real
// answers from dnstest.
func TestCacheOverTheWire(t *testing.T) {
	srv := dnstest.NewServer(t,
		"example.test. 3600 IN SOA ns.example.test. hostmaster.example.test. 1 3600 600 86400 120",
		"example.test. 300 IN MX 10 mx.example.test.",
		"mx.example.test. 60 IN A 192.0.2.1",
	)
	clk := testutil.NewClock(time.Unix(1_700_000_000, 0))
	c := resolver.NewCache(newClient(srv.Addr()), resolver.CacheOptions{Clock: clk.Now})
	ctx := context.Background()

	lookupMX := func() {
		t.Helper()
		mx, _, err := c.LookupMX(ctx, "example.test")
		require.NoError(t, err)
		require.Equal(t, []resolver.MX{{Host: "mx.example.test", Pref: 10}}, mx)
	}
	lookupMX()
	clk.Advance(299 * time.Second)
	lookupMX()
	assert.Equal(t, 1, srv.Queries(), "within the TTL of 300 s")
	clk.Advance(time.Second)
	lookupMX()
	assert.Equal(t, 2, srv.Queries(), "expired after 300 s")

	// NXDOMAIN is cached for the SOA minimum (120 s), not the SOA TTL.
	for range 3 {
		_, info, err := c.LookupMX(ctx, "nope.example.test")
		require.True(t, resolver.IsNXDomain(err))
		assert.LessOrEqual(t, info.TTL, 120*time.Second)
	}
	assert.Equal(t, 3, srv.Queries())
	clk.Advance(120 * time.Second)
	_, _, err := c.LookupMX(ctx, "nope.example.test")
	require.True(t, resolver.IsNXDomain(err))
	assert.Equal(t, 4, srv.Queries())

	// SERVFAIL is not cached.
	srv.SetBehavior("broken.example.test", dnstest.ServFail)
	for range 2 {
		_, _, err := c.LookupTXT(ctx, "broken.example.test")
		require.True(t, resolver.IsTemporary(err))
	}
	assert.Equal(t, 4+2*2, srv.Queries(), "two attempts per lookup, nothing cached")

	// The record changes on the server: seen after expiry only.
	srv.Remove("example.test", "MX")
	require.NoError(t, srv.Add("example.test. 300 IN MX 5 new.example.test."))
	lookupMX()
	clk.Advance(300 * time.Second)
	mx, _, err := c.LookupMX(ctx, "example.test")
	require.NoError(t, err)
	assert.Equal(t, []resolver.MX{{Host: "new.example.test", Pref: 5}}, mx)
}

// TestCacheCoalescesOverTheWire: 64 simultaneous lookups of one name make
// one query.
func TestCacheCoalescesOverTheWire(t *testing.T) {
	srv := dnstest.NewServer(t, "example.test. 3600 IN MX 10 mx.example.test.")
	c := resolver.NewCache(newClient(srv.Addr()), resolver.CacheOptions{})
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for range 64 {
		wg.Go(func() {
			<-start
			_, _, err := c.LookupMX(context.Background(), "example.test")
			errs <- err
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	assert.Equal(t, 1, srv.Queries())
	s := c.Stats()
	assert.Equal(t, uint64(64), s.Hits+s.Misses+s.Coalesced)
	assert.Equal(t, uint64(1), s.Misses)
}
