package imapbackend

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks/store"
	"github.com/mailblocks/mailblocks/store/maildir"
	"github.com/mailblocks/mailblocks/store/memstore"
)

const (
	testUser = "alice@example.org"
	testPass = "correct horse"
)

// testStore is what the tests need of a store: the backend's interface and
// SMTP-side delivery.
type testStore interface {
	Store
	store.Deliverer
}

var testUsers = map[string]string{testUser: testPass, "bob@example.org": "bob's password"}

// newTestStore returns a memstore with the test users.
func newTestStore(t testing.TB) testStore {
	t.Helper()
	st, err := memstore.NewWithUsers(memstore.Options{DefaultDomain: "example.org"}, testUsers)
	require.NoError(t, err)
	return st
}

// newMaildirStore returns a maildir store in t.TempDir() with the test
// users.
func newMaildirStore(t testing.TB) testStore {
	t.Helper()
	st, err := maildir.Open(t.TempDir(), maildir.Options{
		DefaultDomain: "example.org", NoFsync: true, HashPassword: memstore.InsecureFastHash,
	})
	require.NoError(t, err)
	require.NoError(t, st.AddDomain(context.Background(), "example.org"))
	for u, p := range testUsers {
		require.NoError(t, st.AddUser(context.Background(), u, p, store.Quota{}))
	}
	return st
}

// forEachStore runs f against every store implementation.
func forEachStore(t *testing.T, f func(t *testing.T, ts *testServer)) {
	for _, kind := range []struct {
		name string
		new  func(testing.TB) testStore
	}{{"memstore", newTestStore}, {"maildir", newMaildirStore}} {
		t.Run(kind.name, func(t *testing.T) {
			f(t, newTestServerStore(t, kind.new(t), Options{}))
		})
	}
}

type testServer struct {
	st      testStore
	addr    string // plain / STARTTLS listener
	tlsAddr string // implicit TLS listener
	certPEM string // path of the certificate, for external clients
	tlsConf *tls.Config
}

func newTestServer(t testing.TB, opts Options) *testServer {
	t.Helper()
	return newTestServerStore(t, newTestStore(t), opts)
}

func newTestServerStore(t testing.TB, st testStore, opts Options) *testServer {
	t.Helper()
	cert, certPath := testCert(t)
	if opts.TLSConfig == nil {
		opts.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	}
	if opts.AuthFailureDelay == 0 {
		opts.AuthFailureDelay = -1
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	srv := NewServer(st, opts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	tln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go srv.Serve(ln)
	go srv.Serve(tls.NewListener(tln, opts.TLSConfig))
	t.Cleanup(func() { srv.Close() })
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	return &testServer{
		st: st, addr: ln.Addr().String(), tlsAddr: tln.Addr().String(), certPEM: certPath,
		tlsConf: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"},
	}
}

// testWriter sends logs to t.Log while the test runs.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

var (
	certOnce sync.Once
	certVal  tls.Certificate
	certPEM  []byte
	keyPEM   []byte
)

// testCert returns a self-signed certificate for 127.0.0.1 and the path of
// its PEM file in t.TempDir().
func testCert(t testing.TB) (tls.Certificate, string) {
	certOnce.Do(func() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber:          big.NewInt(1),
			Subject:               pkix.Name{CommonName: "127.0.0.1"},
			NotBefore:             time.Now().Add(-time.Hour),
			NotAfter:              time.Now().Add(24 * time.Hour),
			KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
			ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			BasicConstraintsValid: true,
			IsCA:                  true,
			IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
			DNSNames:              []string{"localhost", "127.0.0.1"}, // fetchmail matches DNS names only
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			panic(err)
		}
		kder, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			panic(err)
		}
		certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
		keyPEM = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
		certVal, err = tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			panic(err)
		}
	})
	path := filepath.Join(t.TempDir(), "cert.pem")
	require.NoError(t, os.WriteFile(path, certPEM, 0o600))
	return certVal, path
}

// dial connects with imapclient over STARTTLS and logs in.
func (ts *testServer) dial(t testing.TB, opts *imapclient.Options) *imapclient.Client {
	t.Helper()
	if opts == nil {
		opts = &imapclient.Options{}
	}
	opts.TLSConfig = ts.tlsConf
	c, err := imapclient.DialStartTLS(ts.addr, opts)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	require.NoError(t, c.Login(testUser, testPass).Wait())
	return c
}

func (ts *testServer) deliver(t testing.TB, folder, msg string, flags ...string) store.UID {
	t.Helper()
	uid, err := ts.st.Deliver(context.Background(), testUser, strings.NewReader(msg), store.DeliverOptions{Folder: folder, Flags: flags})
	require.NoError(t, err)
	return uid
}

// needClient finds an external client program: missing in CI is a
// failure, locally a skip.
func needClient(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is required in CI: %v", name, err)
		}
		t.Skipf("%s not installed", name)
	}
	return p
}

func crlf(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.ReplaceAll(s, "\n", "\r\n")
}

var (
	msgPlain = crlf(`From: Bob Sender <bob@example.net>
To: Alice <alice@example.org>
Cc: carol@example.com
Subject: Hello there
Date: Mon, 02 Nov 2026 10:00:00 +0000
Message-ID: <plain-1@example.net>
Content-Type: text/plain; charset=utf-8

Hi Alice,
the quick brown fox jumps over the lazy dog.
`)
	msgMultipart = crlf(`From: Carol <carol@example.com>
To: alice@example.org
Subject: =?utf-8?q?R=C3=A9sum=C3=A9?= attached
Date: Tue, 10 Nov 2026 12:30:00 +0100
Message-ID: <multi-1@example.com>
In-Reply-To: <plain-1@example.net>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="XYZ"

preamble
--XYZ
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

Caf=C3=A9 au lait, s'il vous pla=C3=AEt.
--XYZ
Content-Type: application/octet-stream; name="data.bin"
Content-Disposition: attachment; filename="data.bin"
Content-Transfer-Encoding: base64

AAECAwQFBgcICQ==
--XYZ
Content-Type: message/rfc822

From: Dave <dave@example.com>
Subject: inner message
Message-ID: <inner@example.com>

inner body with zebra
--XYZ--
`)
)

func readAll(t testing.TB, r io.Reader) string {
	b, err := io.ReadAll(r)
	require.NoError(t, err)
	return string(b)
}

var _ = bytes.NewReader
