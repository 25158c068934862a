package resolver

import (
	"context"
	"errors"
	"net"
	"net/netip"
)

// NetResolver adapts a [Resolver] to the methods and error conventions of
// *net.Resolver, which libraries with a pluggable resolver expect
// (blitiri.com.ar/go/spf's DNSResolver, go-msgauth's LookupTXT hooks):
// names carry the trailing dot as in package net, and errors are
// *net.DNSError with IsNotFound, IsTemporary and IsTimeout set from this
// package's classification, since those libraries tell "none" from
// "temperror" that way (RFC 7208 5, RFC 6376 6.1.2).
type NetResolver struct {
	Resolver Resolver
}

// LookupTXT is like net.Resolver.LookupTXT.
func (n NetResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	txt, _, err := n.Resolver.LookupTXT(ctx, name)
	return txt, netError(err, name)
}

// LookupMX is like net.Resolver.LookupMX. A null MX (RFC 7505) is reported
// as "not found": the domain has no exchanger.
func (n NetResolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	mx, _, err := n.Resolver.LookupMX(ctx, name)
	if err != nil {
		return nil, netError(err, name)
	}
	out := make([]*net.MX, len(mx))
	for i, m := range mx {
		out[i] = &net.MX{Host: m.Host + ".", Pref: m.Pref}
	}
	return out, nil
}

// LookupIPAddr is like net.Resolver.LookupIPAddr.
func (n NetResolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	ips, _, err := n.Resolver.LookupIP(ctx, host)
	if err != nil {
		return nil, netError(err, host)
	}
	out := make([]net.IPAddr, len(ips))
	for i, ip := range ips {
		out[i] = net.IPAddr{IP: ip.AsSlice()}
	}
	return out, nil
}

// LookupNetIP is like net.Resolver.LookupNetIP; network is "ip", "ip4" or
// "ip6".
func (n NetResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	ips, _, err := n.Resolver.LookupIP(ctx, host)
	if err != nil {
		return nil, netError(err, host)
	}
	var out []netip.Addr
	for _, ip := range ips {
		if network == "ip" || (network == "ip4") == ip.Is4() {
			out = append(out, ip)
		}
	}
	if len(out) == 0 {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return out, nil
}

// LookupHost is like net.Resolver.LookupHost.
func (n NetResolver) LookupHost(ctx context.Context, host string) ([]string, error) {
	ips, _, err := n.Resolver.LookupIP(ctx, host)
	if err != nil {
		return nil, netError(err, host)
	}
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = ip.String()
	}
	return out, nil
}

// LookupAddr is like net.Resolver.LookupAddr: the names of an IP address
// given in text form.
func (n NetResolver) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return nil, &net.DNSError{Err: "unrecognized address", Name: addr}
	}
	names, _, err := n.Resolver.LookupPTR(ctx, ip)
	if err != nil {
		return nil, netError(err, addr)
	}
	out := make([]string, len(names))
	for i, s := range names {
		out[i] = s + "."
	}
	return out, nil
}

// netError turns an error of this package into a *net.DNSError that keeps
// its classification; the original stays reachable with errors.Unwrap
// (Go 1.23+ DNSError.UnwrapErr).
func netError(err error, name string) error {
	if err == nil {
		return nil
	}
	de := &net.DNSError{
		Err:         err.Error(),
		Name:        name,
		IsNotFound:  IsNotFound(err) || errors.Is(err, ErrNullMX),
		IsTemporary: IsTemporary(err),
		UnwrapErr:   err,
	}
	var re *Error
	if errors.As(err, &re) {
		de.Server = re.Server
		de.IsTimeout = re.Timeout()
	}
	return de
}
