package main

import (
	"bytes"
	"errors"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseFlagsDefaults(t *testing.T) {
	c, err := parseFlags(nil, &bytes.Buffer{})
	require.NoError(t, err)
	assert.Equal(t, "./mailserver-data", c.DataDir)
	assert.Equal(t, []string{"example.test"}, c.Domains)
	assert.Equal(t, "example.test", c.DefaultDomain)
	for svc, addr := range map[string]string{
		"smtp": "127.0.0.1:2525", "submission": "127.0.0.1:5870", "submissions": "127.0.0.1:4650",
		"imap": "127.0.0.1:1430", "imaps": "127.0.0.1:9930", "pop3": "127.0.0.1:1100", "pop3s": "127.0.0.1:9950", "lmtp": "",
	} {
		assert.Equal(t, addr, c.addr(svc), svc)
	}
	assert.Equal(t, 5*time.Minute, c.RetryInterval)
	assert.Equal(t, 5*24*time.Hour, c.MaxQueueTime)
	assert.EqualValues(t, 25<<20, c.MaxMessageBytes)
}

func TestParseFlags(t *testing.T) {
	dir := t.TempDir()
	users := filepath.Join(dir, "users")
	require.NoError(t, os.WriteFile(users, []byte("# staff\ncarol@b.test:pw3\n\ndave@b.test:pw4:1000000\n"), 0o600))
	c, err := parseFlags([]string{
		"-domain", "a.test,b.test", "-domain", "c.test",
		"-user", "alice@a.test:pw1",
		"-users-file", users,
		"-alias", "sales@a.test=alice@a.test", "-list", "all@a.test=alice@a.test,bob@a.test",
		"-catchall", "B.test=carol@b.test", "-trusted-networks", "10.0.0.0/8, 2001:db8::1",
		"-relay", "smarthost.test:587", "-relay-tls", "tls", "-dns", "127.0.0.1:5353",
		"-retry-interval", "30s", "-log-format", "json", "-imap", "",
	}, &bytes.Buffer{})
	require.NoError(t, err)
	assert.Equal(t, []string{"a.test", "b.test", "c.test"}, c.Domains)
	assert.Equal(t, "a.test", c.DefaultDomain)
	assert.Equal(t, []UserSpec{
		{Address: "carol@b.test", Password: "pw3"},
		{Address: "dave@b.test", Password: "pw4", Quota: 1000000},
		{Address: "alice@a.test", Password: "pw1"},
	}, c.Users)
	assert.Equal(t, map[string]string{"sales@a.test": "alice@a.test"}, c.Aliases)
	assert.Equal(t, map[string][]string{"all@a.test": {"alice@a.test", "bob@a.test"}}, c.Lists)
	assert.Equal(t, map[string]string{"b.test": "carol@b.test"}, c.CatchAll)
	assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::1/128")}, c.TrustedNetworks)
	assert.Equal(t, "", c.addr("imap"), "an empty address disables a listener")
	assert.Equal(t, []string{"127.0.0.1:5353"}, c.DNSServers)
}

func TestParseFlagsErrors(t *testing.T) {
	for _, args := range [][]string{
		{"-user", "nopassword"},
		{"-user", "a@b.test:pw:notanumber"},
		{"-alias", "noequals"},
		{"-tls-cert", "x.pem"},
		{"-relay-tls", "sometimes"},
		{"-log-format", "xml"},
		{"-trusted-networks", "not-a-cidr"},
		{"-users-file", "/nonexistent/users"},
		{"stray-argument"},
	} {
		_, err := parseFlags(args, &bytes.Buffer{})
		assert.Error(t, err, "%v", args)
	}
	var out bytes.Buffer
	_, err := parseFlags([]string{"-h"}, &out)
	assert.True(t, errors.Is(err, flag.ErrHelp))
	assert.Contains(t, out.String(), "-max-messages-per-minute")
	assert.Contains(t, out.String(), "(default 120)", "-h shows defaults")
}
