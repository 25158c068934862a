package resolver

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Options configures the resolver returned by [New]. The zero value asks
// the servers of /etc/resolv.conf.
type Options struct {
	// Servers are the recursive servers to ask, in order, as "host:port"
	// or "host" (port 53); IPv6 literals in brackets when a port is given.
	// Default: the nameservers of ResolvConf, or "127.0.0.1:53" when it
	// names none (as the C library does).
	Servers []string
	// ResolvConf is the resolv.conf(5) file read when Servers is empty; its
	// "options timeout:" and "attempts:" values are used when Timeout and
	// Attempts are zero. Default "/etc/resolv.conf".
	ResolvConf string
	// Timeout bounds one query to one server (UDP and, after truncation,
	// TCP). Default 5s (the resolv.conf default). The context's deadline,
	// when earlier, wins.
	Timeout time.Duration
	// Attempts is how many rounds over all the servers a query makes
	// before giving up with a temporary error. Default 2.
	Attempts int
	// UDPSize is the EDNS0 UDP payload size advertised (RFC 6891 6.2.5).
	// Default 1232, which avoids IP fragmentation (DNS flag day 2020).
	UDPSize uint16
	// MaxCNAMEChain is the longest CNAME chain followed. Default 8.
	MaxCNAMEChain int
	// Logger receives debug records of failed exchanges. Default: discard.
	Logger *slog.Logger
}

// Client is a stub resolver on github.com/miekg/dns that asks recursive
// servers (RFC 1034 5.3.1). It sets the DO bit (RFC 3225) so that the
// server reports DNSSEC validation through the AD bit, falls back to TCP
// when a UDP answer is truncated (RFC 7766 5), moves on to the next server
// on SERVFAIL, REFUSED, timeouts and network errors, and follows CNAME
// chains. It keeps no cache: wrap it with [NewCache]. It is safe for
// concurrent use.
type Client struct {
	servers  []string
	timeout  time.Duration
	attempts int
	udpSize  uint16
	maxChain int
	log      *slog.Logger
}

var _ Resolver = (*Client)(nil)

// New returns a resolver configured by opts.
func New(opts Options) *Client {
	c := &Client{
		timeout:  opts.Timeout,
		attempts: opts.Attempts,
		udpSize:  opts.UDPSize,
		maxChain: opts.MaxCNAMEChain,
		log:      opts.Logger,
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	servers := opts.Servers
	if len(servers) == 0 {
		path := opts.ResolvConf
		if path == "" {
			path = "/etc/resolv.conf"
		}
		cfg, err := dns.ClientConfigFromFile(path)
		if err != nil {
			c.log.Debug("resolver: cannot read resolv.conf, using 127.0.0.1", "path", path, "err", err)
		} else {
			for _, s := range cfg.Servers {
				servers = append(servers, net.JoinHostPort(s, cfg.Port))
			}
			if c.timeout == 0 && cfg.Timeout > 0 {
				c.timeout = time.Duration(cfg.Timeout) * time.Second
			}
			if c.attempts == 0 && cfg.Attempts > 0 {
				c.attempts = cfg.Attempts
			}
		}
		if len(servers) == 0 {
			servers = []string{"127.0.0.1:53"}
		}
	}
	for _, s := range servers {
		if _, _, err := net.SplitHostPort(s); err != nil {
			s = net.JoinHostPort(strings.Trim(s, "[]"), "53")
		}
		c.servers = append(c.servers, s)
	}
	if c.timeout <= 0 {
		c.timeout = 5 * time.Second
	}
	if c.attempts <= 0 {
		c.attempts = 2
	}
	if c.udpSize < dns.MinMsgSize {
		c.udpSize = 1232
	}
	if c.maxChain <= 0 {
		c.maxChain = maxCNAMEDefault
	}
	return c
}

// Servers returns the servers the client asks, "host:port".
func (c *Client) Servers() []string { return append([]string(nil), c.servers...) }

// LookupMX implements [Resolver].
func (c *Client) LookupMX(ctx context.Context, domain string) ([]MX, Info, error) {
	rrs, info, err := c.query(ctx, domain, dns.TypeMX)
	if err != nil {
		return nil, info, err
	}
	mx := make([]MX, 0, len(rrs))
	for _, rr := range rrs {
		r := rr.(*dns.MX)
		mx = append(mx, MX{Host: canonical(r.Mx), Pref: r.Preference})
	}
	mx, null := finishMX(mx)
	if null {
		return nil, info, &Error{Kind: KindNullMX, Type: "MX", Name: domain}
	}
	return mx, info, nil
}

// LookupTXT implements [Resolver].
func (c *Client) LookupTXT(ctx context.Context, name string) ([]string, Info, error) {
	rrs, info, err := c.query(ctx, name, dns.TypeTXT)
	if err != nil {
		return nil, info, err
	}
	out := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		var b strings.Builder
		for _, s := range rr.(*dns.TXT).Txt {
			b.WriteString(unescapeTXT(s))
		}
		out = append(out, b.String())
	}
	return out, info, nil
}

// LookupPTR implements [Resolver].
func (c *Client) LookupPTR(ctx context.Context, ip netip.Addr) ([]string, Info, error) {
	if !ip.IsValid() {
		return nil, Info{}, &Error{Kind: KindBadName, Type: "PTR", Name: ip.String()}
	}
	// RFC 1035 3.5, RFC 3596 2.5; an IPv4-mapped IPv6 address is looked up
	// as IPv4.
	rev, err := dns.ReverseAddr(ptrAddr(ip))
	if err != nil {
		return nil, Info{}, &Error{Kind: KindBadName, Type: "PTR", Name: ip.String(), Err: err}
	}
	rrs, info, err := c.query(ctx, rev, dns.TypePTR)
	if err != nil {
		return nil, info, err
	}
	out := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		out = append(out, canonical(rr.(*dns.PTR).Ptr))
	}
	return out, info, nil
}

// LookupTLSA implements [Resolver].
func (c *Client) LookupTLSA(ctx context.Context, port int, proto, host string) ([]TLSA, Info, error) {
	name := tlsaName(port, proto, host)
	rrs, info, err := c.query(ctx, name, dns.TypeTLSA)
	if err != nil {
		return nil, info, err
	}
	out := make([]TLSA, 0, len(rrs))
	for _, rr := range rrs {
		r := rr.(*dns.TLSA)
		data, err := hex.DecodeString(r.Certificate)
		if err != nil {
			// RFC 7671 4.1 (and 5.1): unusable records are ignored.
			continue
		}
		out = append(out, TLSA{Usage: r.Usage, Selector: r.Selector, MatchingType: r.MatchingType, Data: data})
	}
	return out, info, nil
}

// LookupIP implements [Resolver]: it asks for AAAA and A in parallel.
func (c *Client) LookupIP(ctx context.Context, host string) ([]netip.Addr, Info, error) {
	type result struct {
		rrs  []dns.RR
		info Info
		err  error
	}
	v4 := make(chan result, 1)
	go func() {
		rrs, info, err := c.query(ctx, host, dns.TypeA)
		v4 <- result{rrs, info, err}
	}()
	rrs6, info6, err6 := c.query(ctx, host, dns.TypeAAAA)
	r4 := <-v4
	return combineIP(host, rrs6, info6, err6, r4.rrs, r4.info, r4.err)
}

// combineIP merges the AAAA and A answers of LookupIP: addresses of one
// family are enough; without any, a temporary failure of either family
// wins (the other might have had addresses), then NODATA (the name exists)
// over NXDOMAIN.
func combineIP(host string, rrs6 []dns.RR, info6 Info, err6 error, rrs4 []dns.RR, info4 Info, err4 error) ([]netip.Addr, Info, error) {
	var addrs []netip.Addr
	for _, rr := range rrs6 {
		if a, ok := netip.AddrFromSlice(rr.(*dns.AAAA).AAAA); ok {
			addrs = append(addrs, a)
		}
	}
	for _, rr := range rrs4 {
		if a, ok := netip.AddrFromSlice(rr.(*dns.A).A.To4()); ok {
			addrs = append(addrs, a)
		}
	}
	switch {
	case err6 == nil && err4 == nil:
		return addrs, Info{Authentic: info6.Authentic && info4.Authentic, TTL: min(info6.TTL, info4.TTL)}, nil
	case err6 == nil && len(addrs) > 0:
		return addrs, info6, nil
	case err4 == nil && len(addrs) > 0:
		return addrs, info4, nil
	}
	// Both failed (a family without error but without records cannot
	// happen: query reports NODATA as an error).
	info := Info{TTL: min(info6.TTL, info4.TTL)}
	for _, err := range []error{err6, err4} {
		if IsTemporary(err) {
			return nil, Info{}, err
		}
	}
	for _, err := range []error{err6, err4} {
		if err != nil && !IsNXDomain(err) {
			return nil, info, &Error{Kind: KindNoData, Type: "A/AAAA", Name: host}
		}
	}
	return nil, info, &Error{Kind: KindNXDomain, Type: "A/AAAA", Name: host}
}

// query resolves name/qtype, following CNAMEs, and returns the records of
// type qtype at the end of the chain. A negative answer is an *Error whose
// Info carries the RFC 2308 negative TTL.
func (c *Client) query(ctx context.Context, name string, qtype uint16) ([]dns.RR, Info, error) {
	typ := dns.TypeToString[qtype]
	n, ok := queryName(name)
	if !ok {
		return nil, Info{}, &Error{Kind: KindBadName, Type: typ, Name: name}
	}
	target := dns.Fqdn(n)
	seen := map[string]bool{target: true}
	authentic := true
	var ttl uint32 = math.MaxUint32
	for {
		resp, server, err := c.exchange(ctx, target, qtype)
		if err != nil {
			err.Type, err.Name = typ, name
			return nil, Info{}, err
		}
		authentic = authentic && resp.AuthenticatedData
		// Walk the chain inside the answer (RFC 1034 4.3.2 step 3a: a
		// server includes the CNAMEs it followed).
		cur := target
		for {
			var recs []dns.RR
			var cname *dns.CNAME
			for _, rr := range resp.Answer {
				h := rr.Header()
				if h.Class != dns.ClassINET || !strings.EqualFold(h.Name, cur) {
					continue
				}
				if h.Rrtype == qtype {
					recs = append(recs, rr)
				} else if cn, ok := rr.(*dns.CNAME); ok && cname == nil {
					cname = cn
				}
			}
			if len(recs) > 0 {
				for _, rr := range recs {
					ttl = min(ttl, rr.Header().Ttl)
				}
				return recs, Info{Authentic: authentic, TTL: time.Duration(ttl) * time.Second}, nil
			}
			if cname == nil {
				break
			}
			ttl = min(ttl, cname.Hdr.Ttl)
			cur = strings.ToLower(dns.Fqdn(cname.Target))
			if seen[cur] || len(seen) > c.maxChain {
				return nil, Info{}, &Error{Kind: KindCNAMELoop, Type: typ, Name: name, Server: server}
			}
			seen[cur] = true
		}
		soa := negativeSOA(resp)
		if resp.Rcode == dns.RcodeSuccess && cur != target && soa == nil {
			// The server gave the alias but did not follow it: ask for
			// the target ourselves.
			target = cur
			continue
		}
		// RFC 2308 5: a negative answer is cached for the minimum of the
		// SOA's TTL and its MINIMUM field; without an SOA, not at all.
		info := Info{Authentic: authentic}
		if soa != nil {
			ttl = min(ttl, soa.Hdr.Ttl, soa.Minttl)
			info.TTL = time.Duration(ttl) * time.Second
		}
		kind := KindNoData
		if resp.Rcode == dns.RcodeNameError {
			kind = KindNXDomain
		}
		return nil, info, &Error{Kind: kind, Type: typ, Name: name, Server: server}
	}
}

// negativeSOA returns the SOA of the authority section of a negative
// answer (RFC 2308 3), or nil.
func negativeSOA(m *dns.Msg) *dns.SOA {
	for _, rr := range m.Ns {
		if soa, ok := rr.(*dns.SOA); ok {
			return soa
		}
	}
	return nil
}

// exchange asks the servers, in order, for Attempts rounds, until one
// gives a usable answer: NOERROR or NXDOMAIN for the question asked. The
// returned error has Kind, Server and Err set.
func (c *Client) exchange(ctx context.Context, name string, qtype uint16) (*dns.Msg, string, *Error) {
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	q.RecursionDesired = true
	// RFC 3225 3: DO asks the server to do DNSSEC and report it with AD.
	q.SetEdns0(c.udpSize, true)
	var last *Error
	for range c.attempts {
		for _, server := range c.servers {
			if err := ctx.Err(); err != nil {
				return nil, "", &Error{Kind: contextKind(err), Err: err}
			}
			q.Id = dns.Id()
			resp, err := c.exchangeOne(ctx, server, q)
			if err != nil {
				if cerr := ctx.Err(); cerr != nil {
					return nil, "", &Error{Kind: contextKind(cerr), Server: server, Err: cerr}
				}
				last = &Error{Kind: KindNetwork, Server: server, Err: err}
				if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
					last.Kind = KindTimeout
				}
				c.log.Debug("resolver: exchange failed", "server", server, "name", name, "type", dns.TypeToString[qtype], "err", err)
				continue
			}
			switch resp.Rcode {
			case dns.RcodeSuccess, dns.RcodeNameError:
				if len(resp.Question) != 1 || !strings.EqualFold(resp.Question[0].Name, name) || resp.Question[0].Qtype != qtype {
					last = &Error{Kind: KindBadResponse, Server: server, Err: errors.New("answer for another question")}
					continue
				}
				return resp, server, nil
			case dns.RcodeServerFailure:
				last = &Error{Kind: KindServFail, Server: server}
			case dns.RcodeRefused:
				last = &Error{Kind: KindRefused, Server: server}
			default:
				last = &Error{Kind: KindBadResponse, Server: server, Err: fmt.Errorf("rcode %s", dns.RcodeToString[resp.Rcode])}
			}
			c.log.Debug("resolver: server failed", "server", server, "name", name, "type", dns.TypeToString[qtype], "rcode", dns.RcodeToString[resp.Rcode])
		}
	}
	return nil, "", last
}

// exchangeOne sends q to server over UDP and, if the answer is truncated,
// again over TCP (RFC 7766 5). The whole exchange is bounded by the
// client's timeout and by ctx; cancelling ctx interrupts it.
func (c *Client) exchangeOne(ctx context.Context, server string, q *dns.Msg) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, err := c.exchangeNet(ctx, "udp", server, q)
	if err == nil && resp.Truncated {
		resp, err = c.exchangeNet(ctx, "tcp", server, q)
	}
	return resp, err
}

func (c *Client) exchangeNet(ctx context.Context, network, server string, q *dns.Msg) (*dns.Msg, error) {
	dc := &dns.Client{Net: network, UDPSize: c.udpSize, Timeout: c.timeout}
	conn, err := dc.DialContext(ctx, server)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	// miekg/dns honours the context's deadline but not its cancellation:
	// unblock the read when ctx is done.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	resp, _, err := dc.ExchangeWithConnContext(ctx, q, conn)
	return resp, err
}

// unescapeTXT undoes the presentation escaping that miekg/dns applies to
// character-strings ("\"", "\\", "\DDD") to get the raw octets back.
func unescapeTXT(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 >= len(s) {
			b = append(b, s[i])
			continue
		}
		if i+3 < len(s) && isDigit(s[i+1]) && isDigit(s[i+2]) && isDigit(s[i+3]) {
			v := int(s[i+1]-'0')*100 + int(s[i+2]-'0')*10 + int(s[i+3]-'0')
			if v <= 255 {
				b = append(b, byte(v))
				i += 3
				continue
			}
		}
		b = append(b, s[i+1])
		i++
	}
	return string(b)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
