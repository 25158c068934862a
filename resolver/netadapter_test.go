package resolver

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNetResolver(t *testing.T) {
	m := &Mock{
		MX:   map[string][]MX{"example.com": {{"mx.example.com", 10}}, "null.example": {{".", 0}}},
		A:    map[string][]string{"mx.example.com": {"192.0.2.1"}, "v4only.example": {"192.0.2.4"}},
		AAAA: map[string][]string{"mx.example.com": {"2001:db8::1"}},
		TXT:  map[string][]string{"example.com": {"v=spf1 mx -all"}},
		PTR:  map[string][]string{"192.0.2.1": {"mx.example.com"}},
		Fail: []string{"broken.example"},
	}
	n := NetResolver{Resolver: m}
	ctx := context.Background()

	mx, err := n.LookupMX(ctx, "example.com")
	require.NoError(t, err)
	assert.Equal(t, []*net.MX{{Host: "mx.example.com.", Pref: 10}}, mx)
	txt, err := n.LookupTXT(ctx, "example.com")
	require.NoError(t, err)
	assert.Equal(t, []string{"v=spf1 mx -all"}, txt)
	ips, err := n.LookupIPAddr(ctx, "mx.example.com")
	require.NoError(t, err)
	assert.Len(t, ips, 2)
	v4, err := n.LookupNetIP(ctx, "ip4", "mx.example.com")
	require.NoError(t, err)
	assert.Equal(t, []netip.Addr{netip.MustParseAddr("192.0.2.1")}, v4)
	hosts, err := n.LookupHost(ctx, "mx.example.com")
	require.NoError(t, err)
	assert.Equal(t, []string{"2001:db8::1", "192.0.2.1"}, hosts)
	names, err := n.LookupAddr(ctx, "192.0.2.1")
	require.NoError(t, err)
	assert.Equal(t, []string{"mx.example.com."}, names)

	tests := []struct {
		name                string
		err                 error
		notFound, temporary bool
	}{
		{"nxdomain", func() error { _, err := n.LookupTXT(ctx, "nowhere.example"); return err }(), true, false},
		{"nodata", func() error { _, err := n.LookupTXT(ctx, "mx.example.com"); return err }(), true, false},
		{"null mx", func() error { _, err := n.LookupMX(ctx, "null.example"); return err }(), true, false},
		{"servfail", func() error { _, err := n.LookupIPAddr(ctx, "broken.example"); return err }(), false, true},
		{"no ip6", func() error { _, err := n.LookupNetIP(ctx, "ip6", "v4only.example"); return err }(), true, false},
		{"bad addr", func() error { _, err := n.LookupAddr(ctx, "not-an-ip"); return err }(), false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var de *net.DNSError
			require.True(t, errors.As(tt.err, &de), "%v", tt.err)
			assert.Equal(t, tt.notFound, de.IsNotFound)
			assert.Equal(t, tt.temporary, de.IsTemporary)
		})
	}
	_, err = n.LookupTXT(ctx, "nowhere.example")
	assert.True(t, IsNXDomain(err), "the original error is reachable")
}
