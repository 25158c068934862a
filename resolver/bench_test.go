package resolver_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/mailblocks/mailblocks/resolver"
	"github.com/mailblocks/mailblocks/resolver/dnstest"
)

func benchServer(b *testing.B) (*dnstest.Server, *resolver.Client) {
	srv, err := dnstest.Start(
		"example.test. 3600 IN MX 10 mx1.example.test.",
		"example.test. 3600 IN MX 20 mx2.example.test.",
	)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close() })
	return srv, resolver.New(resolver.Options{Servers: []string{srv.Addr()}, Timeout: 5 * time.Second})
}

// BenchmarkCachedLookup: an MX lookup answered from the cache.
func BenchmarkCachedLookup(b *testing.B) {
	_, r := benchServer(b)
	c := resolver.NewCache(r, resolver.CacheOptions{})
	ctx := context.Background()
	if _, _, err := c.LookupMX(ctx, "example.test"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := c.LookupMX(ctx, "example.test"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUncachedLookup: an MX lookup over UDP to dnstest on loopback.
func BenchmarkUncachedLookup(b *testing.B) {
	_, r := benchServer(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := r.LookupMX(ctx, "example.test"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkConcurrentSameName: 64 goroutines look up the same name at the
// same moment through an empty cache; queries/op is how many reached the
// server.
func BenchmarkConcurrentSameName(b *testing.B) {
	srv, r := benchServer(b)
	ctx := context.Background()
	const n = 64
	before := srv.Queries()
	b.ReportAllocs()
	for b.Loop() {
		c := resolver.NewCache(r, resolver.CacheOptions{})
		start := make(chan struct{})
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				<-start
				if _, _, err := c.LookupMX(ctx, "example.test"); err != nil {
					b.Error(err)
				}
			})
		}
		close(start)
		wg.Wait()
	}
	b.ReportMetric(float64(srv.Queries()-before)/float64(b.N), "queries/op")
}
