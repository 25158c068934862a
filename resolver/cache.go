package resolver

import (
	"container/list"
	"context"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// CacheOptions configures [NewCache]. The zero value works.
type CacheOptions struct {
	// MaxEntries bounds the number of cached answers (positive and
	// negative); the least recently used is evicted first. Default 10000.
	MaxEntries int
	// Clock returns the current time. Default time.Now.
	Clock func() time.Time
	// MinTTL raises the cache lifetime of answers whose TTL is shorter
	// (answers with TTL 0, which must not be cached, stay uncached).
	// Default 0: TTLs are respected as given.
	MinTTL time.Duration
	// MaxTTL caps the cache lifetime of positive answers. Default 24h.
	MaxTTL time.Duration
	// MaxNegativeTTL caps the cache lifetime of negative answers
	// (NXDOMAIN, NODATA, null MX). Default 3h (RFC 2308 5).
	MaxNegativeTTL time.Duration
	// OnHit, when set, is called for each lookup answered from the cache,
	// with the query type ("MX", "IP", "TXT", "PTR", "TLSA") and name.
	OnHit func(typ, name string)
	// OnMiss, when set, is called for each lookup not answered from the
	// cache, whether it queried the wrapped resolver or joined an
	// identical query already in flight.
	OnMiss func(typ, name string)
}

// CacheStats are a [Cache]'s counters since it was created.
type CacheStats struct {
	// Hits counts lookups answered from the cache.
	Hits uint64
	// Misses counts lookups that went to the wrapped resolver.
	Misses uint64
	// Coalesced counts lookups that waited for an identical query already
	// in flight instead of sending their own.
	Coalesced uint64
	// Evictions counts entries dropped to stay within MaxEntries.
	Evictions uint64
	// Entries is the number of answers currently cached.
	Entries int
}

// Cache is a [Resolver] that caches the answers of another one: positive
// answers for their TTL, negative answers (NXDOMAIN, NODATA, null MX) for
// the SOA minimum (RFC 2308 5); temporary failures are not cached. It is
// bounded in size (least recently used evicted first) and coalesces
// identical lookups in flight, so that a burst of mail to one domain makes
// one query. It is safe for concurrent use.
//
// Slices returned by a Cache are copies and may be modified, except the
// Data of TLSA records, which is shared.
type Cache struct {
	r    Resolver
	opts CacheOptions

	mu       sync.Mutex
	entries  map[cacheKey]*list.Element // of *cacheEntry
	lru      *list.List                 // front = most recently used
	inflight map[cacheKey]*call
	stats    CacheStats
}

var _ Resolver = (*Cache)(nil)

type cacheKey struct {
	typ  string
	name string
}

type cacheEntry struct {
	key     cacheKey
	val     any // []MX, []netip.Addr, []string, []TLSA
	info    Info
	err     error
	expires time.Time
}

// call is a lookup in flight; done is closed when its result is set.
type call struct {
	done chan struct{}
	val  any
	info Info
	err  error
}

// NewCache returns a caching wrapper around r.
func NewCache(r Resolver, opts CacheOptions) *Cache {
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = 10000
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.MaxTTL <= 0 {
		opts.MaxTTL = 24 * time.Hour
	}
	if opts.MaxNegativeTTL <= 0 {
		opts.MaxNegativeTTL = 3 * time.Hour
	}
	return &Cache{
		r:        r,
		opts:     opts,
		entries:  map[cacheKey]*list.Element{},
		lru:      list.New(),
		inflight: map[cacheKey]*call{},
	}
}

// Stats returns the cache's counters.
func (c *Cache) Stats() CacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Entries = c.lru.Len()
	return s
}

// Flush drops every cached answer.
func (c *Cache) Flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.entries)
	c.lru.Init()
}

// LookupMX implements [Resolver].
func (c *Cache) LookupMX(ctx context.Context, domain string) ([]MX, Info, error) {
	key := cacheKey{"MX", canonical(domain)}
	if v, info, err, ok := fromCache[MX](c, key); ok {
		return v, info, err
	}
	return fetch(c, ctx, key, func(ctx context.Context) ([]MX, Info, error) {
		return c.r.LookupMX(ctx, domain)
	})
}

// LookupIP implements [Resolver].
func (c *Cache) LookupIP(ctx context.Context, host string) ([]netip.Addr, Info, error) {
	key := cacheKey{"IP", canonical(host)}
	if v, info, err, ok := fromCache[netip.Addr](c, key); ok {
		return v, info, err
	}
	return fetch(c, ctx, key, func(ctx context.Context) ([]netip.Addr, Info, error) {
		return c.r.LookupIP(ctx, host)
	})
}

// LookupTXT implements [Resolver].
func (c *Cache) LookupTXT(ctx context.Context, name string) ([]string, Info, error) {
	key := cacheKey{"TXT", canonical(name)}
	if v, info, err, ok := fromCache[string](c, key); ok {
		return v, info, err
	}
	return fetch(c, ctx, key, func(ctx context.Context) ([]string, Info, error) {
		return c.r.LookupTXT(ctx, name)
	})
}

// LookupPTR implements [Resolver].
func (c *Cache) LookupPTR(ctx context.Context, ip netip.Addr) ([]string, Info, error) {
	key := cacheKey{"PTR", ptrAddr(ip)}
	if v, info, err, ok := fromCache[string](c, key); ok {
		return v, info, err
	}
	return fetch(c, ctx, key, func(ctx context.Context) ([]string, Info, error) {
		return c.r.LookupPTR(ctx, ip)
	})
}

// LookupTLSA implements [Resolver].
func (c *Cache) LookupTLSA(ctx context.Context, port int, proto, host string) ([]TLSA, Info, error) {
	key := cacheKey{"TLSA", tlsaName(port, proto, host)}
	if v, info, err, ok := fromCache[TLSA](c, key); ok {
		return v, info, err
	}
	return fetch(c, ctx, key, func(ctx context.Context) ([]TLSA, Info, error) {
		return c.r.LookupTLSA(ctx, port, proto, host)
	})
}

// fromCache returns the cached answer for key, if there is a fresh one.
// (The lookup methods build the closure for fetch only after a miss, so
// that a hit allocates nothing but the copy of the records.)
func fromCache[T any](c *Cache, key cacheKey) ([]T, Info, error, bool) {
	c.mu.Lock()
	v, info, err, ok := hitLocked[T](c, key)
	c.mu.Unlock()
	if ok && c.opts.OnHit != nil {
		c.opts.OnHit(key.typ, key.name)
	}
	return v, info, err, ok
}

// hitLocked looks key up in the cache, dropping it if it expired.
func hitLocked[T any](c *Cache, key cacheKey) ([]T, Info, error, bool) {
	el, ok := c.entries[key]
	if !ok {
		return nil, Info{}, nil, false
	}
	e := el.Value.(*cacheEntry)
	now := c.opts.Clock()
	if !now.Before(e.expires) {
		c.removeLocked(el)
		return nil, Info{}, nil, false
	}
	c.lru.MoveToFront(el)
	c.stats.Hits++
	info := e.info
	// Report the remaining lifetime, so that a cache in front of this one
	// does not extend it.
	info.TTL = e.expires.Sub(now).Truncate(time.Second)
	val, _ := e.val.([]T)
	return slices.Clone(val), info, e.err, true
}

// fetch joins the identical lookup in flight, or starts one. The lookup
// itself runs detached from ctx, so that one caller giving up does not
// fail the others who wait for it; each caller stops waiting when its own
// ctx is done.
func fetch[T any](c *Cache, ctx context.Context, key cacheKey, lookup func(context.Context) ([]T, Info, error)) ([]T, Info, error) {
	c.mu.Lock()
	// The lookup that fromCache missed may have completed since.
	if v, info, err, ok := hitLocked[T](c, key); ok {
		c.mu.Unlock()
		if c.opts.OnHit != nil {
			c.opts.OnHit(key.typ, key.name)
		}
		return v, info, err
	}
	cl, joined := c.inflight[key]
	if joined {
		c.stats.Coalesced++
	} else {
		c.stats.Misses++
		cl = &call{done: make(chan struct{})}
		c.inflight[key] = cl
		go c.run(context.WithoutCancel(ctx), key, cl, func(ctx context.Context) (any, any, Info, error) {
			v, info, err := lookup(ctx)
			// The cache keeps its own copy: the first caller gets v itself.
			return v, slices.Clone(v), info, err
		})
	}
	c.mu.Unlock()
	if c.opts.OnMiss != nil {
		c.opts.OnMiss(key.typ, key.name)
	}
	select {
	case <-cl.done:
	case <-ctx.Done():
		return nil, Info{}, &Error{Kind: contextKind(ctx.Err()), Type: key.typ, Name: key.name, Err: ctx.Err()}
	}
	val, _ := cl.val.([]T)
	if joined {
		val = slices.Clone(val)
	}
	return val, cl.info, cl.err
}

// run performs a lookup in flight and stores its result; lookup returns
// the records for the caller and a copy of them for the cache.
func (c *Cache) run(ctx context.Context, key cacheKey, cl *call, lookup func(context.Context) (val, stored any, info Info, err error)) {
	val, stored, info, err := lookup(ctx)
	cl.val, cl.info, cl.err = val, info, err
	ttl := c.lifetime(info.TTL, err)

	c.mu.Lock()
	delete(c.inflight, key)
	if ttl > 0 {
		if el, ok := c.entries[key]; ok {
			c.removeLocked(el)
		}
		e := &cacheEntry{key: key, val: stored, info: info, err: err, expires: c.opts.Clock().Add(ttl)}
		c.entries[key] = c.lru.PushFront(e)
		for c.lru.Len() > c.opts.MaxEntries {
			c.removeLocked(c.lru.Back())
			c.stats.Evictions++
		}
	}
	c.mu.Unlock()
	close(cl.done)
}

// lifetime returns how long an answer is cached: 0 for temporary failures
// and answers with TTL 0, otherwise the TTL within the configured bounds.
func (c *Cache) lifetime(ttl time.Duration, err error) time.Duration {
	if ttl <= 0 || (err != nil && IsTemporary(err)) {
		return 0
	}
	ttl = max(ttl, c.opts.MinTTL)
	if err != nil {
		return min(ttl, c.opts.MaxNegativeTTL)
	}
	return min(ttl, c.opts.MaxTTL)
}

func (c *Cache) removeLocked(el *list.Element) {
	delete(c.entries, el.Value.(*cacheEntry).key)
	c.lru.Remove(el)
}
