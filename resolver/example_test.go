package resolver_test

import (
	"context"
	"fmt"
	"time"

	"github.com/mailblocks/mailblocks/resolver"
	"github.com/mailblocks/mailblocks/resolver/dnstest"
)

func ExampleMock() {
	r := &resolver.Mock{
		MX: map[string][]resolver.MX{"example.com": {{Host: "mx.example.com", Pref: 10}}},
		A:  map[string][]string{"mx.example.com": {"192.0.2.25"}},
	}
	ctx := context.Background()
	mx, _, _ := r.LookupMX(ctx, "example.com")
	fmt.Println(mx)
	_, _, err := r.LookupMX(ctx, "mx.example.com")
	fmt.Println(resolver.IsNotFound(err), resolver.IsNXDomain(err), resolver.IsTemporary(err))
	// Output:
	// [{mx.example.com 10}]
	// true false false
}

func ExampleNew() {
	srv, err := dnstest.Start(
		"example.test. 300 IN MX 10 mx.example.test.",
		"null.example.test. 300 IN MX 0 .",
	)
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	srv.SetBehavior("broken.example.test", dnstest.ServFail)

	r := resolver.New(resolver.Options{Servers: []string{srv.Addr()}, Timeout: 5 * time.Second, Attempts: 1})
	ctx := context.Background()
	mx, info, _ := r.LookupMX(ctx, "example.test")
	fmt.Println(mx, info.TTL)
	_, _, err = r.LookupMX(ctx, "null.example.test")
	fmt.Println(err)
	_, _, err = r.LookupMX(ctx, "broken.example.test")
	fmt.Println(resolver.IsTemporary(err))
	// Output:
	// [{mx.example.test 10}] 5m0s
	// resolver: MX null.example.test: null MX, domain accepts no mail
	// true
}

func ExampleNewCache() {
	m := &resolver.Mock{TXT: map[string][]string{"example.com": {"v=spf1 -all"}}, TTL: time.Hour}
	var hits int
	c := resolver.NewCache(m, resolver.CacheOptions{OnHit: func(typ, name string) { hits++ }})
	ctx := context.Background()
	for range 3 {
		c.LookupTXT(ctx, "example.com")
	}
	fmt.Println(m.Lookups(), hits, c.Stats().Misses)
	// Output: 1 2 1
}
