package testutil_test

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks/internal/testutil"
)

func TestNewCertNames(t *testing.T) {
	tests := []struct {
		name     string
		opts     testutil.CertOptions
		cn       string
		dnsNames []string
		ips      []string
	}{
		{"default", testutil.CertOptions{}, "localhost", []string{"localhost"}, []string{"127.0.0.1"}},
		{"dns only", testutil.CertOptions{Names: []string{"mx1.test", "mx2.test"}}, "mx1.test", []string{"mx1.test", "mx2.test"}, nil},
		{"ip first", testutil.CertOptions{Names: []string{"127.0.0.1"}}, "127.0.0.1", nil, []string{"127.0.0.1"}},
		{"ips as dns names", testutil.CertOptions{Names: []string{"127.0.0.1", "localhost"}, IPsAsDNSNames: true}, "127.0.0.1", []string{"127.0.0.1", "localhost"}, []string{"127.0.0.1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testutil.NewCert(t, tt.opts)
			leaf := c.Certificate.Leaf
			require.NotNil(t, leaf)
			assert.Equal(t, tt.cn, leaf.Subject.CommonName)
			assert.Equal(t, tt.dnsNames, leaf.DNSNames)
			var ips []string
			for _, ip := range leaf.IPAddresses {
				ips = append(ips, ip.String())
			}
			assert.Equal(t, tt.ips, ips)
			assert.True(t, leaf.IsCA, "OpenSSL clients take the file as their CA")
			assert.Contains(t, leaf.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
			assert.True(t, leaf.NotBefore.Before(time.Now()))
			assert.True(t, leaf.NotAfter.After(time.Now().Add(time.Hour)))
			for _, n := range append(tt.dnsNames, tt.ips...) {
				_, err := leaf.Verify(x509.VerifyOptions{Roots: c.Pool, DNSName: n})
				assert.NoError(t, err, n)
			}
			_, err := leaf.Verify(x509.VerifyOptions{Roots: c.Pool, DNSName: "other.test"})
			assert.Error(t, err)
		})
	}
}

func TestCertPEMAndFiles(t *testing.T) {
	c := testutil.NewCert(t, testutil.CertOptions{})
	pair, err := tls.X509KeyPair(c.CertPEM, c.KeyPEM)
	require.NoError(t, err)
	assert.Equal(t, c.Certificate.Certificate, pair.Certificate)
	assert.Contains(t, string(c.KeyPEM), "EC PRIVATE KEY")

	certFile, keyFile := c.WriteFiles(t)
	fromFiles, err := tls.LoadX509KeyPair(certFile, keyFile)
	require.NoError(t, err)
	assert.Equal(t, c.Certificate.Certificate, fromFiles.Certificate)
	fi, err := os.Stat(keyFile)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	other := testutil.NewCert(t, testutil.CertOptions{})
	assert.NotEqual(t, c.CertPEM, other.CertPEM, "each call makes a fresh key")
}

// TestCertHandshake: a client with ClientConfig completes a handshake with
// a server using ServerConfig, and one trusting another certificate fails.
func TestCertHandshake(t *testing.T) {
	c := testutil.NewCert(t, testutil.CertOptions{})
	ln := tls.NewListener(testutil.Listen(t), c.ServerConfig())
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprint(conn, "hello\n")
			conn.Close()
		}
	}()
	t.Cleanup(func() { ln.Close() })

	for _, name := range []string{"localhost", "127.0.0.1"} {
		conn, err := tls.Dial("tcp", ln.Addr().String(), c.ClientConfig(name))
		require.NoError(t, err, name)
		b, err := io.ReadAll(conn)
		conn.Close()
		require.NoError(t, err)
		assert.Equal(t, "hello\n", string(b))
	}
	other := testutil.NewCert(t, testutil.CertOptions{})
	conn, err := tls.Dial("tcp", ln.Addr().String(), other.ClientConfig("localhost"))
	if err == nil {
		conn.Close()
	}
	require.Error(t, err)
}

func TestRequireToolFound(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh in PATH")
	}
	assert.Equal(t, sh, testutil.RequireTool(t, "sh"))
	assert.Equal(t, sh, testutil.RequireTool(t, sh), "a path is checked as is")
}

// TestRequireToolMissing runs the helper in a child test process, with
// and without CI, and checks its verdict.
func TestRequireToolMissing(t *testing.T) {
	if os.Getenv("TESTUTIL_CHILD") != "" {
		testutil.RequireTool(t, "no-such-tool-mailblocks")
		t.Log("NOT STOPPED")
		return
	}
	for _, tt := range []struct {
		ci   string
		fail bool
		want string
	}{
		{"1", true, "--- FAIL: TestRequireToolMissing"},
		{"", false, "--- SKIP: TestRequireToolMissing"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestRequireToolMissing$", "-test.v")
		cmd.Env = append(os.Environ(), "TESTUTIL_CHILD=1", "CI="+tt.ci)
		out, err := cmd.CombinedOutput()
		if tt.fail {
			require.Error(t, err, "CI=%q:\n%s", tt.ci, out)
		} else {
			require.NoError(t, err, "CI=%q:\n%s", tt.ci, out)
		}
		assert.Contains(t, string(out), tt.want)
		assert.Contains(t, string(out), "no-such-tool-mailblocks")
		assert.NotContains(t, string(out), "NOT STOPPED")
	}
}

func TestBufferConcurrent(t *testing.T) {
	var b testutil.Buffer
	assert.Equal(t, []string{""}, b.Lines())
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 100 {
				fmt.Fprintf(&b, "w%d %d\n", i, j)
			}
		}()
	}
	wg.Wait()
	lines := b.Lines()
	assert.Len(t, lines, 800)
	assert.Equal(t, strings.Join(lines, "\n")+"\n", b.String())
	for _, l := range lines {
		assert.Regexp(t, `^w\d \d+$`, l)
	}
}

// recordingTB records what is logged through it.
type recordingTB struct {
	testing.TB
	logs []string
}

func (r *recordingTB) Helper() {}
func (r *recordingTB) Log(args ...any) {
	r.logs = append(r.logs, fmt.Sprint(args...))
}

func TestLogger(t *testing.T) {
	rec := &recordingTB{TB: t}
	l := testutil.Logger(rec, slog.LevelInfo)
	l.Debug("hidden")
	l.Info("shown", "k", "v")
	require.Len(t, rec.logs, 1)
	assert.Contains(t, rec.logs[0], "msg=shown k=v")
	assert.False(t, strings.HasSuffix(rec.logs[0], "\n"))
}

func TestListenAndFreePort(t *testing.T) {
	ln := testutil.Listen(t)
	addr := ln.Addr().(*net.TCPAddr)
	assert.True(t, addr.IP.IsLoopback())
	assert.NotZero(t, addr.Port)

	port := testutil.FreePort(t)
	assert.NotZero(t, port)
	// The port was released: it can be bound again (nothing else on
	// loopback is expected to take it within this instant; if it did,
	// this would fail loudly rather than pass wrongly).
	again, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	require.NoError(t, err)
	again.Close()
}

func TestClock(t *testing.T) {
	start := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	c := testutil.NewClock(start)
	now := c.Now
	assert.Equal(t, start, now())
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				c.Advance(time.Second)
				_ = c.Now()
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, start.Add(40*time.Second), now())
}

func TestHostPort(t *testing.T) {
	h, p := testutil.HostPort(t, "127.0.0.1:2525")
	assert.Equal(t, "127.0.0.1", h)
	assert.Equal(t, "2525", p)
	h, p = testutil.HostPort(t, "[::1]:143")
	assert.Equal(t, "::1", h)
	assert.Equal(t, "143", p)
}
