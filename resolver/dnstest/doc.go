// Package dnstest is a small authoritative DNS server for tests, in the
// spirit of net/http/httptest: it listens on 127.0.0.1 on a random port,
// UDP and TCP on the same port, and serves records given as zone-file
// lines:
//
//	srv := dnstest.NewServer(t,
//		"example.test. 300 IN MX 10 mx.example.test.",
//		"mx.example.test. 300 IN A 192.0.2.25",
//	)
//	r := resolver.New(resolver.Options{Servers: []string{srv.Addr()}})
//
// Besides answering correctly (NXDOMAIN versus NODATA with an SOA in the
// authority section for negative caching, CNAME chains, truncation of UDP
// answers larger than the client's EDNS0 buffer, RFC 6891), it has knobs
// for the failures a resolver must survive: forced truncation of UDP
// answers, SERVFAIL, REFUSED and silence for chosen names, and the AD bit
// (RFC 4035 3.2.3) for chosen names. It counts and logs the queries it
// receives so that tests and benchmarks can see what reached the wire.
package dnstest
