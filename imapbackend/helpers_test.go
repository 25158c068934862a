package imapbackend

import (
	"context"
	"crypto/tls"
	"log/slog"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks/internal/testutil"
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
	// fetchmail matches the host it connects to against DNS names only,
	// hence 127.0.0.1 as a DNS name too; mbsync connects to "localhost".
	cert := testutil.NewCert(t, testutil.CertOptions{Names: []string{"127.0.0.1", "localhost"}, IPsAsDNSNames: true})
	certPath, _ := cert.WriteFiles(t)
	if opts.TLSConfig == nil {
		opts.TLSConfig = cert.ServerConfig()
	}
	if opts.AuthFailureDelay == 0 {
		opts.AuthFailureDelay = -1
	}
	if opts.Logger == nil {
		opts.Logger = testutil.Logger(t, slog.LevelWarn)
	}
	srv := NewServer(st, opts)
	ln, tln := testutil.Listen(t), testutil.Listen(t)
	go srv.Serve(ln)
	go srv.Serve(tls.NewListener(tln, opts.TLSConfig))
	t.Cleanup(func() { srv.Close() })
	return &testServer{
		st: st, addr: ln.Addr().String(), tlsAddr: tln.Addr().String(), certPEM: certPath,
		tlsConf: cert.ClientConfig("127.0.0.1"),
	}
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
