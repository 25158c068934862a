package dnstest

import (
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func exchange(t *testing.T, srv *Server, network, name string, qtype uint16, do bool) (*dns.Msg, error) {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: 5 * time.Second}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	if do {
		m.SetEdns0(1232, true)
	}
	r, _, err := c.Exchange(m, srv.Addr())
	return r, err
}

func TestServerAnswers(t *testing.T) {
	srv := NewServer(t,
		"example.test. 300 IN SOA ns.example.test. hostmaster.example.test. 1 3600 600 86400 120",
		"example.test. 300 IN MX 10 mx.example.test.",
		"mx.example.test. 200 IN A 192.0.2.25",
		"alias.example.test. 100 IN CNAME mx.example.test.",
		"deep.sub.example.test. IN TXT \"hello\"",
	)
	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			r, err := exchange(t, srv, network, "EXAMPLE.test", dns.TypeMX, false)
			require.NoError(t, err)
			assert.Equal(t, dns.RcodeSuccess, r.Rcode)
			assert.True(t, r.Authoritative)
			require.Len(t, r.Answer, 1)
			assert.Equal(t, "mx.example.test.", r.Answer[0].(*dns.MX).Mx)

			r, err = exchange(t, srv, network, "alias.example.test", dns.TypeA, false)
			require.NoError(t, err)
			require.Len(t, r.Answer, 2)
			assert.IsType(t, &dns.CNAME{}, r.Answer[0])
			assert.IsType(t, &dns.A{}, r.Answer[1])

			// NODATA: the name exists, the type does not; SOA for RFC 2308.
			r, err = exchange(t, srv, network, "mx.example.test", dns.TypeMX, false)
			require.NoError(t, err)
			assert.Equal(t, dns.RcodeSuccess, r.Rcode)
			assert.Empty(t, r.Answer)
			require.Len(t, r.Ns, 1)
			assert.Equal(t, uint32(120), r.Ns[0].(*dns.SOA).Minttl)

			// Empty non-terminal: exists, NODATA.
			r, err = exchange(t, srv, network, "sub.example.test", dns.TypeA, false)
			require.NoError(t, err)
			assert.Equal(t, dns.RcodeSuccess, r.Rcode)

			r, err = exchange(t, srv, network, "nope.example.test", dns.TypeA, false)
			require.NoError(t, err)
			assert.Equal(t, dns.RcodeNameError, r.Rcode)
			require.Len(t, r.Ns, 1)
		})
	}
	assert.Equal(t, 10, srv.Queries())
	log := srv.Log()
	require.Len(t, log, 10)
	assert.Equal(t, Query{Name: "example.test.", Type: "MX", Net: "udp"}, log[0])
	assert.Equal(t, "tcp", log[9].Net)
}

func TestServerBehaviors(t *testing.T) {
	srv := NewServer(t, "a.test. IN A 192.0.2.1", "b.test. IN A 192.0.2.2")

	srv.SetBehavior("a.test", ServFail)
	r, err := exchange(t, srv, "udp", "a.test", dns.TypeA, false)
	require.NoError(t, err)
	assert.Equal(t, dns.RcodeServerFailure, r.Rcode)

	srv.SetBehavior("a.test", Refused)
	r, err = exchange(t, srv, "udp", "a.test", dns.TypeA, false)
	require.NoError(t, err)
	assert.Equal(t, dns.RcodeRefused, r.Rcode)

	srv.SetBehavior(AllNames, TruncateUDP)
	srv.SetBehavior("a.test", Answer)
	r, err = exchange(t, srv, "udp", "b.test", dns.TypeA, false)
	require.NoError(t, err)
	assert.True(t, r.Truncated)
	assert.Empty(t, r.Answer)
	r, err = exchange(t, srv, "tcp", "b.test", dns.TypeA, false)
	require.NoError(t, err)
	assert.False(t, r.Truncated)
	assert.Len(t, r.Answer, 1)
	r, err = exchange(t, srv, "udp", "a.test", dns.TypeA, false)
	require.NoError(t, err)
	assert.False(t, r.Truncated)

	srv.SetBehavior("b.test", Drop)
	c := &dns.Client{Net: "udp", Timeout: 300 * time.Millisecond}
	m := new(dns.Msg).SetQuestion("b.test.", dns.TypeA)
	_, _, err = c.Exchange(m, srv.Addr())
	require.Error(t, err)
	assert.Equal(t, 6, srv.Queries())
}

func TestServerAuthenticAndTruncation(t *testing.T) {
	srv := NewServer(t, "a.test. IN A 192.0.2.1")
	srv.SetAuthentic(AllNames, true)
	r, err := exchange(t, srv, "udp", "a.test", dns.TypeA, false)
	require.NoError(t, err)
	assert.False(t, r.AuthenticatedData, "AD only when DO or AD was asked")
	r, err = exchange(t, srv, "udp", "a.test", dns.TypeA, true)
	require.NoError(t, err)
	assert.True(t, r.AuthenticatedData)
	assert.True(t, srv.Log()[1].DO)

	// An answer too big for 512 octets is truncated over UDP.
	for i := range 60 {
		require.NoError(t, srv.Add(dnsTXT(i)))
	}
	r, err = exchange(t, srv, "udp", "big.test", dns.TypeTXT, false)
	require.NoError(t, err)
	assert.True(t, r.Truncated)
	r, err = exchange(t, srv, "tcp", "big.test", dns.TypeTXT, false)
	require.NoError(t, err)
	assert.False(t, r.Truncated)
	assert.Len(t, r.Answer, 60)

	srv.Remove("big.test", "TXT")
	r, err = exchange(t, srv, "tcp", "big.test", dns.TypeTXT, false)
	require.NoError(t, err)
	assert.Equal(t, dns.RcodeNameError, r.Rcode)
}

func TestServerNoChaseAndLoop(t *testing.T) {
	srv := NewServer(t,
		"a.test. IN CNAME b.test.", "b.test. IN CNAME c.test.", "c.test. IN A 192.0.2.3",
		"loop1.test. IN CNAME loop2.test.", "loop2.test. IN CNAME loop1.test.")
	r, err := exchange(t, srv, "udp", "loop1.test", dns.TypeA, false)
	require.NoError(t, err)
	assert.Len(t, r.Answer, 2)
	srv.SetChaseCNAME(false)
	r, err = exchange(t, srv, "udp", "a.test", dns.TypeA, false)
	require.NoError(t, err)
	require.Len(t, r.Answer, 1)
	assert.Equal(t, "b.test.", r.Answer[0].(*dns.CNAME).Target)
}

func TestStartBadRecord(t *testing.T) {
	_, err := Start("this is not a record")
	require.Error(t, err)
}

func dnsTXT(i int) string {
	return "big.test. IN TXT \"record number " + string(rune('a'+i%26)) + "-padding-padding-padding\" \"" + string(rune('0'+i%10)) + "\""
}
