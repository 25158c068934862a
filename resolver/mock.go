package resolver

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"
)

// Mock is a static, map-driven [Resolver] for tests. Map keys are names in
// any case, with or without the trailing dot; PTR keys are IP addresses in
// text form ("192.0.2.1", "2001:db8::1"); TLSA keys are the full owner name
// ("_25._tcp.mx.example.com").
//
// A name that appears in none of the maps does not exist (NXDOMAIN); a name
// that appears in some map but not in the one asked has no data (NODATA).
// Names listed in Fail fail temporarily (SERVFAIL); Errors returns any
// chosen error. A CNAME entry is followed (the other maps are consulted for
// its target) with loop detection, as the real resolver does.
//
// Mock must not be modified while lookups are running. Use a pointer: the
// lookup counter must not be copied.
type Mock struct {
	MX   map[string][]MX
	A    map[string][]string
	AAAA map[string][]string
	TXT  map[string][]string
	PTR  map[string][]string
	TLSA map[string][]TLSA
	// CNAME maps an alias to its canonical name.
	CNAME map[string]string

	// Fail lists names, or "TYPE name" pairs such as "MX example.com", whose
	// lookups fail with a temporary SERVFAIL error.
	Fail []string
	// Errors maps a name, or "TYPE name", to the error its lookups return.
	// It is consulted before everything else.
	Errors map[string]error
	// Authentic sets Info.Authentic on every answer.
	Authentic bool
	// TTL is reported in Info.TTL of every answer, positive or negative.
	// Zero means answers are not cacheable.
	TTL time.Duration

	lookups atomic.Int64
}

var _ Resolver = (*Mock)(nil)

// Lookups returns the number of lookups the Mock has answered (LookupIP
// counts once).
func (m *Mock) Lookups() int { return int(m.lookups.Load()) }

// LookupMX implements [Resolver].
func (m *Mock) LookupMX(ctx context.Context, domain string) ([]MX, Info, error) {
	var out []MX
	info, err := m.lookup(ctx, "MX", domain, func(n string) bool {
		mx, ok := lookupMap(m.MX, n)
		for _, x := range mx {
			out = append(out, MX{Host: canonical(x.Host), Pref: x.Pref})
		}
		return ok && len(mx) > 0
	})
	if err != nil {
		return nil, info, err
	}
	out, null := finishMX(out)
	if null {
		return nil, info, &Error{Kind: KindNullMX, Type: "MX", Name: domain}
	}
	return out, info, nil
}

// LookupIP implements [Resolver].
func (m *Mock) LookupIP(ctx context.Context, host string) ([]netip.Addr, Info, error) {
	var out []netip.Addr
	var perr error
	parse := func(list []string) {
		for _, s := range list {
			a, err := netip.ParseAddr(s)
			if err != nil {
				perr = fmt.Errorf("resolver: mock: bad address %q for %s: %w", s, host, err)
				return
			}
			out = append(out, a)
		}
	}
	info, err := m.lookup(ctx, "IP", host, func(n string) bool {
		v6, ok6 := lookupMap(m.AAAA, n)
		v4, ok4 := lookupMap(m.A, n)
		parse(v6)
		parse(v4)
		return (ok6 || ok4) && len(v6)+len(v4) > 0
	})
	if err == nil {
		err = perr
	}
	if err != nil {
		return nil, info, err
	}
	return out, info, nil
}

// LookupTXT implements [Resolver].
func (m *Mock) LookupTXT(ctx context.Context, name string) ([]string, Info, error) {
	var out []string
	info, err := m.lookup(ctx, "TXT", name, func(n string) bool {
		v, ok := lookupMap(m.TXT, n)
		out = append(out, v...)
		return ok && len(v) > 0
	})
	if err != nil {
		return nil, info, err
	}
	return out, info, nil
}

// LookupPTR implements [Resolver].
func (m *Mock) LookupPTR(ctx context.Context, ip netip.Addr) ([]string, Info, error) {
	var out []string
	key := ptrAddr(ip)
	info, err := m.lookup(ctx, "PTR", key, func(n string) bool {
		v, ok := lookupMap(m.PTR, n)
		for _, s := range v {
			out = append(out, canonical(s))
		}
		return ok && len(v) > 0
	})
	if err != nil {
		return nil, info, err
	}
	return out, info, nil
}

// LookupTLSA implements [Resolver].
func (m *Mock) LookupTLSA(ctx context.Context, port int, proto, host string) ([]TLSA, Info, error) {
	var out []TLSA
	name := tlsaName(port, proto, host)
	info, err := m.lookup(ctx, "TLSA", name, func(n string) bool {
		v, ok := lookupMap(m.TLSA, n)
		out = append(out, v...)
		return ok && len(v) > 0
	})
	if err != nil {
		return nil, info, err
	}
	return out, info, nil
}

// lookup runs the common part of every lookup: configured errors, CNAME
// chasing, existence. found is called for each name of the chain and
// reports whether records of the asked type were found there.
func (m *Mock) lookup(ctx context.Context, typ, name string, found func(name string) bool) (Info, error) {
	m.lookups.Add(1)
	info := Info{Authentic: m.Authentic, TTL: m.TTL}
	if err := ctx.Err(); err != nil {
		return Info{}, &Error{Kind: contextKind(err), Type: typ, Name: name, Err: err}
	}
	n := canonical(name)
	if typ != "PTR" {
		var ok bool
		if n, ok = queryName(name); !ok {
			return Info{}, &Error{Kind: KindBadName, Type: typ, Name: name}
		}
	}
	seen := map[string]bool{}
	for {
		if err := m.configured(typ, n); err != nil {
			return Info{}, err
		}
		if found(n) {
			return info, nil
		}
		target, ok := lookupMap(m.CNAME, n)
		if !ok {
			break
		}
		seen[n] = true
		n = canonical(target)
		if seen[n] || len(seen) > maxCNAMEDefault {
			return Info{}, &Error{Kind: KindCNAMELoop, Type: typ, Name: name}
		}
	}
	if m.exists(n) {
		return info, &Error{Kind: KindNoData, Type: typ, Name: name}
	}
	return info, &Error{Kind: KindNXDomain, Type: typ, Name: name}
}

// configured returns the error configured for name and type, if any.
func (m *Mock) configured(typ, n string) error {
	for k, err := range m.Errors {
		if mockKeyMatches(k, typ, n) {
			return err
		}
	}
	for _, k := range m.Fail {
		if mockKeyMatches(k, typ, n) {
			return &Error{Kind: KindServFail, Type: typ, Name: n}
		}
	}
	return nil
}

// mockKeyMatches matches "name" or "TYPE name" (TYPE "IP", "A" or "AAAA"
// for LookupIP).
func mockKeyMatches(key, typ, n string) bool {
	if t, rest, ok := strings.Cut(key, " "); ok {
		if !strings.EqualFold(t, typ) && !(typ == "IP" && (strings.EqualFold(t, "A") || strings.EqualFold(t, "AAAA"))) {
			return false
		}
		key = rest
	}
	return canonical(key) == n
}

// exists reports whether n appears in any of the maps.
func (m *Mock) exists(n string) bool {
	_, a := lookupMap(m.MX, n)
	_, b := lookupMap(m.A, n)
	_, c := lookupMap(m.AAAA, n)
	_, d := lookupMap(m.TXT, n)
	_, e := lookupMap(m.PTR, n)
	_, f := lookupMap(m.TLSA, n)
	_, g := lookupMap(m.CNAME, n)
	return a || b || c || d || e || f || g
}

// lookupMap finds n in a map whose keys may differ in case or trailing dot.
func lookupMap[V any](mp map[string]V, n string) (V, bool) {
	if v, ok := mp[n]; ok {
		return v, true
	}
	for k, v := range mp {
		if canonical(k) == n {
			return v, true
		}
	}
	var zero V
	return zero, false
}
