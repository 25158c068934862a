package resolver

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks/internal/testutil"
)

func newTestCache(m *Mock, opts CacheOptions) (*Cache, *testutil.Clock) {
	clk := testutil.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	opts.Clock = clk.Now
	return NewCache(m, opts), clk
}

func TestCacheTTL(t *testing.T) {
	m := &Mock{MX: map[string][]MX{"example.com": {{Host: "mx.example.com", Pref: 10}}}, TTL: time.Minute, Authentic: true}
	c, clk := newTestCache(m, CacheOptions{})
	ctx := context.Background()

	mx, info, err := c.LookupMX(ctx, "example.com")
	require.NoError(t, err)
	assert.Equal(t, []MX{{"mx.example.com", 10}}, mx)
	assert.Equal(t, Info{Authentic: true, TTL: time.Minute}, info)

	clk.Advance(50 * time.Second)
	mx, info, err = c.LookupMX(ctx, "EXAMPLE.com.")
	require.NoError(t, err)
	assert.Equal(t, []MX{{"mx.example.com", 10}}, mx)
	assert.Equal(t, 10*time.Second, info.TTL, "remaining lifetime")
	assert.True(t, info.Authentic)
	assert.Equal(t, 1, m.Lookups())

	clk.Advance(10 * time.Second)
	_, _, err = c.LookupMX(ctx, "example.com")
	require.NoError(t, err)
	assert.Equal(t, 2, m.Lookups(), "expired at exactly the TTL")

	s := c.Stats()
	assert.Equal(t, CacheStats{Hits: 1, Misses: 2, Entries: 1}, s)
}

func TestCacheNegativeAndTemporary(t *testing.T) {
	m := &Mock{
		A:    map[string][]string{"host.example": {"192.0.2.1"}},
		MX:   map[string][]MX{"null.example": {{Host: ".", Pref: 0}}},
		Fail: []string{"broken.example"},
		TTL:  5 * time.Minute,
	}
	c, clk := newTestCache(m, CacheOptions{MaxNegativeTTL: 2 * time.Minute})
	ctx := context.Background()

	for range 3 {
		_, _, err := c.LookupMX(ctx, "nowhere.example")
		assert.True(t, IsNXDomain(err))
		_, _, err = c.LookupTXT(ctx, "host.example")
		assert.True(t, IsNotFound(err))
		_, _, err = c.LookupMX(ctx, "null.example")
		assert.ErrorIs(t, err, ErrNullMX)
	}
	assert.Equal(t, 3, m.Lookups(), "negative answers are cached")

	for range 3 {
		_, _, err := c.LookupIP(ctx, "broken.example")
		assert.True(t, IsTemporary(err))
	}
	assert.Equal(t, 6, m.Lookups(), "temporary failures are not cached")

	// Negative answers are capped by MaxNegativeTTL.
	clk.Advance(2 * time.Minute)
	_, _, err := c.LookupMX(ctx, "nowhere.example")
	assert.True(t, IsNXDomain(err))
	assert.Equal(t, 7, m.Lookups())
}

func TestCacheTTLBounds(t *testing.T) {
	m := &Mock{A: map[string][]string{"h.example": {"192.0.2.1"}}}
	c, clk := newTestCache(m, CacheOptions{MinTTL: 30 * time.Second, MaxTTL: time.Hour})
	ctx := context.Background()

	// TTL 0: not cached, MinTTL notwithstanding.
	c.LookupIP(ctx, "h.example")
	c.LookupIP(ctx, "h.example")
	assert.Equal(t, 2, m.Lookups())

	m.TTL = time.Second
	c.LookupIP(ctx, "h.example")
	clk.Advance(20 * time.Second)
	c.LookupIP(ctx, "h.example")
	assert.Equal(t, 3, m.Lookups(), "MinTTL raised the lifetime")

	c.Flush()
	m.TTL = 48 * time.Hour
	c.LookupIP(ctx, "h.example")
	clk.Advance(time.Hour)
	c.LookupIP(ctx, "h.example")
	assert.Equal(t, 5, m.Lookups(), "MaxTTL capped the lifetime")
}

func TestCacheLRU(t *testing.T) {
	m := &Mock{TXT: map[string][]string{"a": {"A"}, "b": {"B"}, "c": {"C"}}, TTL: time.Hour}
	var hits, misses []string
	c, _ := newTestCache(m, CacheOptions{
		MaxEntries: 2,
		OnHit:      func(typ, name string) { hits = append(hits, typ+" "+name) },
		OnMiss:     func(typ, name string) { misses = append(misses, typ+" "+name) },
	})
	ctx := context.Background()
	c.LookupTXT(ctx, "a")
	c.LookupTXT(ctx, "b")
	c.LookupTXT(ctx, "a") // a is now the most recently used
	c.LookupTXT(ctx, "c") // evicts b
	assert.Equal(t, 3, m.Lookups())
	c.LookupTXT(ctx, "a")
	assert.Equal(t, 3, m.Lookups())
	c.LookupTXT(ctx, "b")
	assert.Equal(t, 4, m.Lookups())

	s := c.Stats()
	assert.Equal(t, uint64(2), s.Evictions)
	assert.Equal(t, 2, s.Entries)
	assert.Equal(t, []string{"TXT a", "TXT a"}, hits)
	assert.Equal(t, []string{"TXT a", "TXT b", "TXT c", "TXT b"}, misses)
}

func TestCacheReturnsCopies(t *testing.T) {
	m := &Mock{MX: map[string][]MX{"example.com": {{"a.example", 10}, {"b.example", 10}}}, TTL: time.Hour}
	c, _ := newTestCache(m, CacheOptions{})
	ctx := context.Background()
	mx, _, _ := c.LookupMX(ctx, "example.com")
	mx[0], mx[1] = mx[1], mx[0] // a caller shuffling equal preferences
	mx, _, _ = c.LookupMX(ctx, "example.com")
	assert.Equal(t, "a.example", mx[0].Host)
	mx[0].Host = "changed"
	mx, _, _ = c.LookupMX(ctx, "example.com")
	assert.Equal(t, "a.example", mx[0].Host)
}

// gated is a Resolver whose MX lookups wait for a gate to open.
type gated struct {
	*Mock
	gate chan struct{}
}

func (g *gated) LookupMX(ctx context.Context, domain string) ([]MX, Info, error) {
	<-g.gate
	return g.Mock.LookupMX(ctx, domain)
}

func TestCacheCoalesces(t *testing.T) {
	m := &Mock{MX: map[string][]MX{"example.com": {{"mx.example.com", 10}}}, TTL: time.Hour}
	g := &gated{Mock: m, gate: make(chan struct{})}
	c := NewCache(g, CacheOptions{})

	const n = 16
	var wg sync.WaitGroup
	results := make([][]MX, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			results[i], _, errs[i] = c.LookupMX(context.Background(), "example.com")
		})
	}
	// A waiter that gives up does not disturb the others.
	ctx, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan error, 1)
	go func() {
		_, _, err := c.LookupMX(ctx, "example.com")
		gaveUp <- err
	}()
	require.Eventually(t, func() bool {
		s := c.Stats()
		return s.Misses+s.Coalesced == n+1
	}, 10*time.Second, time.Millisecond)
	cancel()
	err := <-gaveUp
	assert.ErrorIs(t, err, context.Canceled)
	assert.True(t, IsTemporary(err))

	close(g.gate)
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i])
		assert.Equal(t, []MX{{"mx.example.com", 10}}, results[i])
	}
	assert.Equal(t, 1, m.Lookups())
	s := c.Stats()
	assert.Equal(t, uint64(1), s.Misses)
	assert.Equal(t, uint64(n), s.Coalesced)

	// The answer was cached by the lookup in flight.
	_, _, err = c.LookupMX(context.Background(), "example.com")
	require.NoError(t, err)
	assert.Equal(t, 1, m.Lookups())
}

func TestCacheKeys(t *testing.T) {
	m := &Mock{
		PTR:  map[string][]string{"192.0.2.1": {"h.example"}},
		TLSA: map[string][]TLSA{"_25._tcp.mx.example": {{Usage: 3}}},
		A:    map[string][]string{"mx.example": {"192.0.2.1"}},
		TTL:  time.Hour,
	}
	c, _ := newTestCache(m, CacheOptions{})
	ctx := context.Background()
	for range 2 {
		ptr, _, err := c.LookupPTR(ctx, netip.MustParseAddr("::ffff:192.0.2.1"))
		require.NoError(t, err)
		assert.Equal(t, []string{"h.example"}, ptr)
		tlsa, _, err := c.LookupTLSA(ctx, 25, "tcp", "MX.example.")
		require.NoError(t, err)
		assert.Len(t, tlsa, 1)
		_, _, err = c.LookupTLSA(ctx, 465, "tcp", "mx.example")
		assert.True(t, IsNotFound(err))
		ips, _, err := c.LookupIP(ctx, "mx.example")
		require.NoError(t, err)
		assert.Len(t, ips, 1)
	}
	assert.Equal(t, 4, m.Lookups())
}
