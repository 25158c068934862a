package resolver

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMock(t *testing.T) {
	boom := errors.New("boom")
	m := &Mock{
		MX: map[string][]MX{
			"example.com.": {{Host: "MX2.example.com.", Pref: 20}, {Host: "mx1.example.com", Pref: 10}},
			"null.example": {{Host: ".", Pref: 0}},
		},
		A:     map[string][]string{"mx1.example.com": {"192.0.2.1"}, "v4.example": {"192.0.2.4"}},
		AAAA:  map[string][]string{"mx1.example.com": {"2001:db8::1"}},
		TXT:   map[string][]string{"example.com": {"v=spf1 -all"}},
		PTR:   map[string][]string{"192.0.2.1": {"mx1.example.com."}},
		TLSA:  map[string][]TLSA{"_25._tcp.mx1.example.com": {{Usage: 3, Selector: 1, MatchingType: 1, Data: []byte{1}}}},
		CNAME: map[string]string{"www.example.com": "mx1.example.com", "loop.example": "loop2.example", "loop2.example": "loop.example"},
		Fail:  []string{"tempfail.example", "MX half.example"},
		Errors: map[string]error{
			"TXT custom.example": boom,
		},
		Authentic: true,
		TTL:       time.Minute,
	}
	ctx := context.Background()

	mx, info, err := m.LookupMX(ctx, "EXAMPLE.com")
	require.NoError(t, err)
	assert.Equal(t, []MX{{"mx1.example.com", 10}, {"mx2.example.com", 20}}, mx)
	assert.Equal(t, Info{Authentic: true, TTL: time.Minute}, info)

	_, _, err = m.LookupMX(ctx, "null.example")
	assert.ErrorIs(t, err, ErrNullMX)
	assert.False(t, IsTemporary(err))

	ips, _, err := m.LookupIP(ctx, "www.example.com")
	require.NoError(t, err)
	assert.Equal(t, []netip.Addr{netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("192.0.2.1")}, ips)

	ips, _, err = m.LookupIP(ctx, "v4.example")
	require.NoError(t, err)
	assert.Len(t, ips, 1)

	txt, _, err := m.LookupTXT(ctx, "example.com")
	require.NoError(t, err)
	assert.Equal(t, []string{"v=spf1 -all"}, txt)

	ptr, _, err := m.LookupPTR(ctx, netip.MustParseAddr("::ffff:192.0.2.1"))
	require.NoError(t, err)
	assert.Equal(t, []string{"mx1.example.com"}, ptr)

	tlsa, _, err := m.LookupTLSA(ctx, 25, "tcp", "MX1.example.com.")
	require.NoError(t, err)
	assert.Len(t, tlsa, 1)

	// NODATA: the name exists in another map.
	_, _, err = m.LookupTXT(ctx, "mx1.example.com")
	assert.True(t, IsNotFound(err))
	assert.False(t, IsNXDomain(err))
	// NXDOMAIN.
	_, _, err = m.LookupMX(ctx, "nowhere.example")
	assert.True(t, IsNXDomain(err))
	// Temporary failures.
	_, _, err = m.LookupIP(ctx, "tempfail.example")
	assert.True(t, IsTemporary(err))
	_, _, err = m.LookupMX(ctx, "half.example")
	assert.True(t, IsTemporary(err))
	_, _, err = m.LookupTXT(ctx, "half.example")
	assert.True(t, IsNXDomain(err))
	_, _, err = m.LookupTXT(ctx, "custom.example")
	assert.ErrorIs(t, err, boom)
	// CNAME loop.
	_, _, err = m.LookupIP(ctx, "loop.example")
	var re *Error
	require.ErrorAs(t, err, &re)
	assert.Equal(t, KindCNAMELoop, re.Kind)
	// Bad name.
	_, _, err = m.LookupIP(ctx, "a..b")
	assert.ErrorIs(t, err, ErrBadName)
	// Cancelled context.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, _, err = m.LookupIP(cctx, "v4.example")
	assert.ErrorIs(t, err, context.Canceled)
	assert.True(t, IsTemporary(err))

	// U-labels are looked up as A-labels.
	m.MX["xn--bcher-kva.de"] = []MX{{Host: "mx.xn--bcher-kva.de", Pref: 5}}
	mx, _, err = m.LookupMX(ctx, "Bücher.de")
	require.NoError(t, err)
	assert.Equal(t, []MX{{"mx.xn--bcher-kva.de", 5}}, mx)
	_, _, err = m.LookupMX(ctx, "bü cher.de")
	assert.ErrorIs(t, err, ErrBadName)

	assert.Equal(t, 18, m.Lookups())
}

func TestCheckName(t *testing.T) {
	long := ""
	for range 64 {
		long += "a"
	}
	tests := map[string]bool{
		"example.com": true, "_25._tcp.mx.example": true, "a": true,
		"": false, "a..b": false, ".a": false, "a b": false, "ex\u00e4mple.com": false,
		long + ".com": false, long[:63] + ".com": true,
	}
	for name, want := range tests {
		assert.Equal(t, want, checkName(name), name)
	}
}
