package dnstest

import (
	"strings"

	"github.com/miekg/dns"
)

// maxChase bounds the CNAME chains the server follows for an answer.
const maxChase = 16

// ServeDNS implements dns.Handler.
func (s *Server) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	network := "udp"
	if w.LocalAddr().Network() == "tcp" {
		network = "tcp"
	}
	m := new(dns.Msg)
	if len(r.Question) != 1 || r.Opcode != dns.OpcodeQuery {
		m.SetRcode(r, dns.RcodeFormatError)
		w.WriteMsg(m)
		return
	}
	q := r.Question[0]
	name := strings.ToLower(q.Name)
	opt := r.IsEdns0()
	do := opt != nil && opt.Do()

	s.mu.Lock()
	s.log = append(s.log, Query{Name: name, Type: dns.TypeToString[q.Qtype], Net: network, DO: do})
	b, ok := s.behavior[name]
	if !ok {
		b = s.behavior[AllNames]
	}
	ad, ok := s.authentic[name]
	if !ok {
		ad = s.authentic[AllNames]
	}
	var rcode int
	if b == Answer || b == TruncateUDP {
		rcode = s.resolveLocked(m, name, q.Qtype)
	}
	s.mu.Unlock()

	switch b {
	case Drop:
		return
	case ServFail:
		m.SetRcode(r, dns.RcodeServerFailure)
		w.WriteMsg(m)
		return
	case Refused:
		m.SetRcode(r, dns.RcodeRefused)
		w.WriteMsg(m)
		return
	}
	answer, ns := m.Answer, m.Ns
	m.SetRcode(r, rcode)
	m.Answer, m.Ns = answer, ns
	m.Authoritative = true
	m.RecursionAvailable = r.RecursionDesired
	if ad && (do || r.AuthenticatedData) {
		m.AuthenticatedData = true
	}
	size := dns.MinMsgSize
	if opt != nil {
		m.SetEdns0(max(opt.UDPSize(), dns.MinMsgSize), do)
		size = int(max(opt.UDPSize(), dns.MinMsgSize))
	}
	if network == "udp" {
		if b == TruncateUDP {
			m.Answer, m.Ns = nil, nil
			m.Truncated = true
		} else {
			// RFC 6891 7: never send more than the client can take.
			m.Truncate(size)
		}
	}
	w.WriteMsg(m)
}

// resolveLocked fills m's answer and authority sections for name and
// qtype and returns the RCODE.
func (s *Server) resolveLocked(m *dns.Msg, name string, qtype uint16) int {
	target := name
	seen := map[string]bool{}
	for range maxChase {
		found := false
		var cname dns.RR
		for _, rr := range s.records {
			h := rr.Header()
			if h.Name != target {
				continue
			}
			if h.Rrtype == qtype || qtype == dns.TypeANY {
				m.Answer = append(m.Answer, dns.Copy(rr))
				found = true
			} else if h.Rrtype == dns.TypeCNAME {
				cname = rr
			}
		}
		if found {
			return dns.RcodeSuccess
		}
		if cname == nil {
			break
		}
		// RFC 1034 3.6.2: an alias has only its CNAME; answer it and go on
		// with its target.
		m.Answer = append(m.Answer, dns.Copy(cname))
		seen[target] = true
		target = strings.ToLower(cname.(*dns.CNAME).Target)
		if s.noChase || seen[target] {
			return dns.RcodeSuccess
		}
	}
	m.Ns = append(m.Ns, s.soaLocked(target))
	// RFC 6604 3: the RCODE describes the last name of the chain.
	if s.existsLocked(target) {
		return dns.RcodeSuccess
	}
	return dns.RcodeNameError
}

// existsLocked reports whether name owns records or is an empty
// non-terminal (RFC 8020: a name with descendants exists).
func (s *Server) existsLocked(name string) bool {
	for _, rr := range s.records {
		n := rr.Header().Name
		if n == name || strings.HasSuffix(n, "."+name) || name == "." {
			return true
		}
	}
	return false
}

// soaLocked returns the SOA of the closest enclosing zone among the
// records, or a synthetic one with a negative TTL of 60 s, for the
// authority section of a negative answer (RFC 2308 3).
func (s *Server) soaLocked(name string) dns.RR {
	var best dns.RR
	for _, rr := range s.records {
		h := rr.Header()
		if h.Rrtype != dns.TypeSOA || !dns.IsSubDomain(h.Name, name) {
			continue
		}
		if best == nil || len(h.Name) > len(best.Header().Name) {
			best = rr
		}
	}
	if best != nil {
		return dns.Copy(best)
	}
	return &dns.SOA{
		Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 60},
		Ns:  "ns.dnstest.", Mbox: "hostmaster.dnstest.", Serial: 1,
		Refresh: 3600, Retry: 600, Expire: 86400, Minttl: 60,
	}
}
