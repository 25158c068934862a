package smtpclient

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/mailblocks/mailblocks"
	"github.com/mailblocks/mailblocks/resolver"
)

// target is one host to try for a destination.
type target struct {
	// name is the MX host name, the smarthost's host, or the address
	// literal; it is what TLS certificates are checked against.
	name string
	// port is the TCP port.
	port int
	// addrs, when set, are the addresses to use without a lookup (address
	// literals, IP smarthosts); dial, when set, is passed to the Dialer as
	// is (a smarthost given by name).
	addrs []netip.Addr
	dial  string
	// implicit is set for the implicit MX of RFC 5321 5.1: the domain's
	// own address records, whose absence is a permanent failure.
	implicit bool
	// smarthost is set for the configured relay: a name of ours that
	// does not resolve is a local configuration problem, temporary.
	smarthost bool
}

func (t target) key(mode tlsMode, auth bool) string {
	return fmt.Sprintf("%s|%d|%d|%t", t.name, t.port, mode, auth)
}

// route returns the hosts to try for domain, in order (RFC 5321 5.1), at
// most MaxHosts of them.
func (cl *Client) route(ctx context.Context, domain string) ([]target, *Error) {
	if sh := cl.opts.Smarthost; sh != "" {
		host, port, err := net.SplitHostPort(sh)
		if err != nil {
			return nil, newError(sh, CmdLocal, mailblocks.ErrTemporary.WithMessage("Bad smarthost address").Wrap(err))
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, newError(sh, CmdLocal, mailblocks.ErrTemporary.WithMessage("Bad smarthost port").Wrap(err))
		}
		t := target{name: host, port: p, smarthost: true}
		if a, err := netip.ParseAddr(host); err == nil {
			t.addrs = []netip.Addr{a}
		} else if cl.opts.Resolver == nil {
			t.dial = sh
		}
		return []target{t}, nil
	}

	// RFC 5321 4.1.3: an address literal names the host directly.
	if strings.HasPrefix(domain, "[") {
		a, ok := mailblocks.AddressLiteral(domain)
		if !ok {
			return nil, newError("", CmdLocal, errNoSuchDomain.WithMessage("Bad address literal "+domain))
		}
		return []target{{name: domain, port: cl.opts.Port, addrs: []netip.Addr{a}}}, nil
	}

	res := cl.opts.Resolver
	if res == nil {
		return nil, newError("", CmdDNS, errDNSTemp.WithMessage("No resolver configured"))
	}
	mxs, _, err := res.LookupMX(ctx, domain)
	switch {
	case err == nil:
	case errors.Is(err, resolver.ErrNullMX):
		// RFC 7505 3.2: mail to a domain with a null MX fails at once.
		return nil, newError("", CmdDNS, errNullMX.WithMessage("Domain "+domain+" does not accept mail (null MX)").Wrap(err))
	case resolver.IsNXDomain(err):
		return nil, newError("", CmdDNS, errNoSuchDomain.WithMessage("Domain "+domain+" does not exist").Wrap(err))
	case resolver.IsNotFound(err):
		// RFC 5321 5.1: no MX records: the domain itself is the implicit
		// MX, with preference 0.
		return []target{{name: domain, port: cl.opts.Port, implicit: true}}, nil
	case resolver.IsTemporary(err):
		return nil, newError("", CmdDNS, errDNSTemp.WithMessage("Temporary DNS failure looking up MX of "+domain).Wrap(err))
	default:
		// Malformed name and the like: the address cannot be routed.
		return nil, newError("", CmdDNS, errNoSuchDomain.WithMessage("Bad destination domain "+domain).Wrap(err))
	}
	shuffleEqual(mxs)
	var out []target
	for _, mx := range mxs {
		if len(out) == cl.opts.MaxHosts {
			break
		}
		out = append(out, target{name: mx.Host, port: cl.opts.Port})
	}
	if len(out) == 0 {
		return nil, newError("", CmdDNS, errNoRoute)
	}
	return out, nil
}

// shuffleEqual randomises the order among MX records of equal preference,
// which RFC 5321 5.1 requires to spread the load; mxs is sorted by
// preference.
func shuffleEqual(mxs []resolver.MX) {
	for i := 0; i < len(mxs); {
		j := i + 1
		for j < len(mxs) && mxs[j].Pref == mxs[i].Pref {
			j++
		}
		grp := mxs[i:j]
		rand.Shuffle(len(grp), func(a, b int) { grp[a], grp[b] = grp[b], grp[a] })
		i = j
	}
}

// addresses returns the "ip:port" strings to dial for t, IPv6 first as the
// resolver orders them, at most MaxAddresses of them.
func (cl *Client) addresses(ctx context.Context, t target) ([]string, *Error) {
	if t.dial != "" {
		return []string{t.dial}, nil
	}
	addrs := t.addrs
	if addrs == nil {
		var err error
		addrs, _, err = cl.opts.Resolver.LookupIP(ctx, t.name)
		switch {
		case err == nil:
		case resolver.IsTemporary(err):
			return nil, newError(t.name, CmdDNS, errDNSTemp.WithMessage("Temporary DNS failure looking up "+t.name).Wrap(err))
		case t.smarthost:
			// Like a bad Smarthost address: retried, not bounced.
			return nil, newError(t.name, CmdDNS, errNoRoute.WithMessage("Smarthost "+t.name+" has no address").Wrap(err))
		case t.implicit:
			// No MX and no address: the domain has no mail service.
			return nil, newError(t.name, CmdDNS, errNoSuchDomain.WithMessage("Domain has no MX and no address records").Wrap(err))
		default:
			// An MX host that does not resolve (RFC 3463 5.4.4 "Unable
			// to route"); other MX hosts may still work.
			return nil, newError(t.name, CmdDNS, &mailblocks.Error{Code: 550, Enhanced: mailblocks.EnhancedCode{5, 4, 4}, Message: "MX host " + t.name + " has no address", Err: err})
		}
	}
	var out []string
	for _, a := range addrs {
		if len(out) == cl.opts.MaxAddresses {
			break
		}
		a = a.Unmap()
		if !a.IsValid() || a.IsUnspecified() {
			continue
		}
		out = append(out, netip.AddrPortFrom(a, uint16(t.port)).String())
	}
	if len(out) == 0 {
		if t.smarthost {
			return nil, newError(t.name, CmdDNS, errNoRoute.WithMessage("No usable address for smarthost "+t.name))
		}
		return nil, newError(t.name, CmdDNS, &mailblocks.Error{Code: 550, Enhanced: mailblocks.EnhancedCode{5, 4, 4}, Message: "No usable address for " + t.name})
	}
	return out, nil
}
