package smtpserver

import (
	"bufio"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks"
)

func TestTrustedNetworks(t *testing.T) {
	cfg := newConfig(Options{Hostname: "h", TrustedNetworks: parsePrefixes("192.0.2.0/24", "2001:db8::/32", "10.1.2.3/8")}, nil)
	tests := []struct {
		ip   string
		want bool
	}{
		{"192.0.2.1", true},
		{"192.0.3.1", false},
		{"::ffff:192.0.2.9", true}, // v4-mapped, as a dual-stack listener sees it
		{"2001:db8:1::25", true},
		{"2001:db9::1", false},
		{"10.200.0.1", true}, // the prefix is masked
		{"127.0.0.1", false}, // unlike Postfix, localhost is not implied
		{"::1", false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, cfg.isTrusted(netip.MustParseAddr(tt.ip)), tt.ip)
	}
}

func TestDefaults(t *testing.T) {
	cfg := newConfig(Options{MaxRecipients: -1}, func() (string, error) { return "host.test", nil })
	assert.Equal(t, "host.test", cfg.Hostname)
	assert.Equal(t, int64(25<<20), cfg.MaxMessageBytes)
	assert.Equal(t, 0, cfg.MaxRecipients, "negative disables")
	assert.Equal(t, 50, cfg.MaxHops)
	assert.Equal(t, 50, cfg.MaxConnectionsPerIP)
	assert.Equal(t, 0, cfg.MaxMessagesPerMinute)
	assert.Equal(t, 20, cfg.MaxErrors)
	assert.Equal(t, 2000, cfg.MaxLineLength)
	assert.Equal(t, 5*time.Minute, cfg.CommandTimeout)
	assert.Equal(t, 10*time.Minute, cfg.DataTimeout)
	assert.Equal(t, 500, cfg.MinDataRate)
	assert.NotNil(t, cfg.Logger)
	assert.NotNil(t, cfg.Now)
}

func TestReadHeader(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		header   string
		rest     string
		received int
		err      error
	}{
		{"normal", "A: 1\r\nB: 2\r\n\r\nbody\r\n", "A: 1\r\nB: 2\r\n", "\r\n", 0, nil},
		{"folded", "Received: from x\r\n\tby y\r\nReceived: z\r\n\r\n", "Received: from x\r\n\tby y\r\nReceived: z\r\n", "\r\n", 2, nil},
		{"no body", "A: 1\r\nB: 2\r\n", "A: 1\r\nB: 2\r\n", "", 0, nil},
		{"no final newline", "A: 1", "A: 1\r\n", "", 0, nil},
		{"no header", "just text\r\nmore\r\n", "", "just text\r\n", 0, nil},
		{"empty", "", "", "", 0, nil},
		{"starts with blank", "\r\nbody\r\n", "", "\r\n", 0, nil},
		{"header then garbage", "A: 1\r\nnot a header\r\n", "A: 1\r\n", "not a header\r\n", 0, nil},
		{"leading continuation is body", " x\r\n", "", " x\r\n", 0, nil},
		{"too big", "A: " + strings.Repeat("x", 200) + "\r\n\r\n", "", "", 0, ErrHeaderTooBig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			br := bufio.NewReaderSize(strings.NewReader(tt.in), 16)
			raw, hdr, err := readHeader(br, 100)
			if tt.err != nil {
				require.ErrorIs(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.header, string(raw.header))
			assert.Equal(t, tt.rest, string(raw.rest))
			assert.Len(t, hdr.Values("Received"), tt.received)
		})
	}
}

func TestReceivedField(t *testing.T) {
	clk := time.Date(2026, 11, 23, 1, 2, 3, 0, time.UTC)
	s := &session{c: &conn{srv: New(Options{Hostname: "mx.test"}), mode: MX}}
	env := &mailblocks.Envelope{
		ID: "ABC", Helo: "evil)\r\nX-Injected: 1", Received: clk,
		RemoteAddr: &net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 25},
		Recipients: []mailblocks.Recipient{{Address: "a@example.org"}},
	}
	assert.Equal(t, "Received: from evil???X-Injected:?1 (unknown [IPv6:2001:db8::1])\r\n"+
		"\tby mx.test (mailblocks) with ESMTP id ABC\r\n\tfor <a@example.org>;\r\n\tMon, 23 Nov 2026 01:02:03 +0000\r\n", s.received(env))
	env.AuthUser = "u"
	env.SMTPUTF8 = true
	s.c.mode = LMTP
	assert.Contains(t, s.received(env), "with UTF8LMTPA id")
}

func TestHeaderTooBig(t *testing.T) {
	rec := newRecorder()
	opts := testOptions(t, rec)
	opts.MaxHeaderBytes = 1024
	s := greeted(t, opts, MX)
	s.expect("MAIL FROM:<a@remote.test>", "250")
	s.expect("RCPT TO:<alice@example.org>", "250")
	big := strings.Repeat("X-Filler: "+strings.Repeat("y", 60)+"\r\n", 30) + "\r\nbody\r\n"
	assert.True(t, strings.HasPrefix(s.data(big), "552 5.3.4"))
	s.expect("MAIL FROM:<a@remote.test>", "250")
	s.expect("RCPT TO:<alice@example.org>", "250")
	// A message without a header passes through unchanged.
	assert.True(t, strings.HasPrefix(s.data("no header here\r\n"), "250"))
	assert.True(t, strings.HasSuffix(rec.next(t).body, "+0000\r\nno header here\r\n"))
}

func TestLimiter(t *testing.T) {
	l := newLimiter(time.Hour)
	a := netip.MustParseAddr("2001:db8:1:2:3::1")
	b := netip.MustParseAddr("2001:db8:1:2:3:fff::2") // same /84
	c := netip.MustParseAddr("2001:db8:1:2:4::1")     // other /84
	require.True(t, l.connect(a, 2))
	require.True(t, l.connect(b, 2))
	assert.False(t, l.connect(a, 2), "one IPv6 client is a /84")
	assert.True(t, l.connect(c, 2))
	l.disconnect(a)
	assert.True(t, l.connect(b, 2))

	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	v4 := netip.MustParseAddr("192.0.2.1")
	for range 2 {
		require.True(t, l.message(v4, now, 2))
	}
	assert.False(t, l.message(v4, now.Add(59*time.Second), 2))
	assert.True(t, l.message(v4, now.Add(time.Minute), 2))
	assert.True(t, l.message(netip.MustParseAddr("192.0.2.2"), now, 2), "IPv4 is per address")

	for range 3 {
		l.authFailed(v4, now, 3)
	}
	// The once-a-minute sweep run by message must not shorten the
	// lockout to its own one-minute window.
	l.message(v4, now.Add(2*time.Minute), 2)
	assert.True(t, l.authLocked(v4, now.Add(59*time.Minute), 3))
	assert.False(t, l.authLocked(v4, now.Add(time.Hour), 3))

	// Idle entries are swept.
	l.disconnect(b)
	l.disconnect(b)
	l.disconnect(c)
	l.message(v4, now.Add(3*time.Hour), 2)
	l.mu.Lock()
	assert.Len(t, l.clients, 1)
	l.mu.Unlock()
}
