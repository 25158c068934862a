package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks/internal/testutil"
	"github.com/mailblocks/mailblocks/pop3"
	"github.com/mailblocks/mailblocks/resolver/dnstest"
)

// TestDefaults: with no flags but the listen addresses and the data
// directory, the server creates admin@example.test, prints its password,
// and that user can receive and read mail; postmaster@ reaches it.
func TestDefaults(t *testing.T) {
	ts := startServer(t, "")
	require.Equal(t, "admin@example.test", ts.defaultUser)
	require.NotEmpty(t, ts.defaultPassword)
	var banner strings.Builder
	ts.printBanner(&banner)
	assert.Contains(t, banner.String(), "log in as admin@example.test with password "+ts.defaultPassword)
	assert.Contains(t, banner.String(), ts.Addr("smtp"))

	require.NoError(t, sendMX(t, ts.Addr("smtp"), "someone@remote.test", []string{"postmaster@example.test"},
		message("someone@remote.test", "postmaster@example.test", "to postmaster", "hello")))
	msgs := waitIMAP(t, ts.Addr("imap"), "admin", ts.defaultPassword, "INBOX", 1)
	assert.Contains(t, msgs[0], "Subject: to postmaster")
}

// TestRestartKeepsDefaultUser: the generated password survives a restart
// and is printed again; no second user is created.
func TestRestartKeepsDefaultUser(t *testing.T) {
	dir := t.TempDir()
	first := startServer(t, dir)
	require.NotEmpty(t, first.defaultPassword)
	first.stop()

	second := startServer(t, dir)
	users, err := second.store.Users(context.Background())
	require.NoError(t, err)
	assert.Equal(t, []string{"admin@example.test"}, users)
	assert.Equal(t, first.defaultPassword, second.defaultPassword)
}

// TestSMTPToIMAPAndPOP3: a message received over SMTP is in the maildir and
// reads the same over IMAP FETCH and POP3 RETR.
func TestSMTPToIMAPAndPOP3(t *testing.T) {
	ts := startServer(t, "", "-user", alice+":"+alicePass)
	msg := message("bob@remote.test", alice, "hello alice", "The body.\r\n.A line starting with a dot.")
	require.NoError(t, sendMX(t, ts.Addr("smtp"), "bob@remote.test", []string{alice}, msg))

	viaIMAP := waitIMAP(t, ts.Addr("imap"), alice, alicePass, "INBOX", 1)
	require.Len(t, viaIMAP, 1)
	assert.True(t, strings.HasPrefix(viaIMAP[0], "Received: from peer.test"), "a Received header is prepended:\n%s", viaIMAP[0])
	assert.True(t, strings.HasSuffix(viaIMAP[0], msg), "the original message follows unchanged")

	ctx := context.Background()
	pc, err := pop3.DialTLS(ctx, ts.Addr("pop3s"), pop3.ClientOptions{TLSConfig: insecureTLS})
	require.NoError(t, err)
	defer pc.Close()
	require.NoError(t, pc.Login(ctx, "alice", alicePass), "login without @domain uses the default domain")
	n, size, err := pc.Stat(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.EqualValues(t, len(viaIMAP[0]), size)
	r, err := pc.Retrieve(ctx, 1)
	require.NoError(t, err)
	viaPOP, err := io.ReadAll(r)
	require.NoError(t, err)
	require.NoError(t, r.Close())
	assert.Equal(t, viaIMAP[0], string(viaPOP))
	require.NoError(t, pc.Quit(ctx))
}

// TestUnknownAndRelay: the MX refuses unknown local users and relaying for
// untrusted clients... except that loopback is trusted by default, so the
// test narrows the trusted networks.
func TestUnknownAndRelay(t *testing.T) {
	ts := startServer(t, "", "-user", alice+":"+alicePass, "-trusted-networks", "192.0.2.0/24")
	err := sendMX(t, ts.Addr("smtp"), "bob@remote.test", []string{"nobody@example.test"}, message("bob@remote.test", "nobody@example.test", "x", "x"))
	var se *smtp.SMTPError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, 550, se.Code)
	assert.Equal(t, smtp.EnhancedCode{5, 1, 1}, se.EnhancedCode)

	err = sendMX(t, ts.Addr("smtp"), "bob@remote.test", []string{"victim@elsewhere.test"}, message("bob@remote.test", "victim@elsewhere.test", "x", "x"))
	require.ErrorAs(t, err, &se)
	assert.Equal(t, smtp.EnhancedCode{5, 7, 1}, se.EnhancedCode, "relay denied")
}

// TestSubmissionToSecondServer: alice submits with AUTH; the queue and
// smtpclient find the second server through an MX record served by the
// test DNS server; bob reads it over IMAP there.
func TestSubmissionToSecondServer(t *testing.T) {
	bobPort := testutil.FreePort(t)
	dns := dnstest.NewServer(t,
		"other.test. 300 IN MX 10 mx.other.test.",
		"mx.other.test. 300 IN A 127.0.0.1",
	)
	b := startServer(t, "", "-domain", "other.test", "-user", "bob@other.test:bob-secret",
		"-smtp", fmt.Sprintf("127.0.0.1:%d", bobPort), "-hostname", "mx.other.test")
	a := startServer(t, "", "-user", alice+":"+alicePass, "-dns", dns.Addr(),
		"-outbound-port", fmt.Sprint(bobPort), "-retry-interval", "1s")

	msg := message(alice, "bob@other.test", "across servers", "Hi Bob.")
	require.NoError(t, submit(t, a.Addr("submission"), alice, alicePass, alice, []string{"bob@other.test"}, msg))

	got := waitIMAP(t, b.Addr("imap"), "bob@other.test", "bob-secret", "INBOX", 1)
	assert.Contains(t, got[0], "Subject: across servers")
	assert.Contains(t, got[0], "by mx.other.test", "B's Received header")
	assert.Contains(t, got[0], "by mail.example.test", "A's Received header")
	assert.Contains(t, got[0], "with ESMTPSA", "A received it authenticated over TLS")
}

// refusingMX is a go-smtp server that refuses every recipient with 550.
type refusingMX struct{}

func (refusingMX) NewSession(*smtp.Conn) (smtp.Session, error) { return refusingSession{}, nil }

type refusingSession struct{}

func (refusingSession) Mail(string, *smtp.MailOptions) error { return nil }
func (refusingSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "<" + to + ">: Recipient address rejected: User unknown"}
}
func (refusingSession) Data(io.Reader) error { return errors.New("no recipients") }
func (refusingSession) Reset()               {}
func (refusingSession) Logout() error        { return nil }

// TestRemoteRefusalBounces: the remote MX answers 550 5.1.1; a DSN with
// that reply lands in the sender's INBOX.
func TestRemoteRefusalBounces(t *testing.T) {
	srv := smtp.NewServer(refusingMX{})
	srv.Domain = "mx.refuse.test"
	port := testutil.FreePort(t)
	srv.Addr = fmt.Sprintf("127.0.0.1:%d", port)
	go srv.ListenAndServe()
	t.Cleanup(func() { srv.Close() })
	dns := dnstest.NewServer(t,
		"refuse.test. 300 IN MX 10 mx.refuse.test.",
		"mx.refuse.test. 300 IN A 127.0.0.1",
	)
	a := startServer(t, "", "-user", alice+":"+alicePass, "-dns", dns.Addr(), "-outbound-port", fmt.Sprint(port))

	require.Eventually(t, func() bool {
		return submit(t, a.Addr("submission"), alice, alicePass, alice, []string{"ghost@refuse.test"},
			message(alice, "ghost@refuse.test", "will bounce", "Anyone there?")) == nil
	}, waitFor, 200*time.Millisecond, "the refusing MX must be listening")

	got := waitIMAP(t, a.Addr("imap"), alice, alicePass, "INBOX", 1)
	dsn := got[0]
	assert.Contains(t, dsn, "multipart/report")
	assert.Contains(t, dsn, "report-type=delivery-status")
	assert.Contains(t, dsn, "Final-Recipient: rfc822; ghost@refuse.test")
	assert.Contains(t, dsn, "Action: failed")
	assert.Contains(t, dsn, "Status: 5.1.1")
	assert.Contains(t, dsn, "User unknown", "the remote's text is quoted")
	assert.Contains(t, dsn, "Subject: will bounce", "the original headers are included")
}

// TestIdleSeesSMTPDelivery: an IMAP client in IDLE is told about a message
// that arrives over SMTP.
func TestIdleSeesSMTPDelivery(t *testing.T) {
	ts := startServer(t, "", "-user", alice+":"+alicePass)
	var mu sync.Mutex
	var exists []uint32
	c := imapLogin(t, ts.Addr("imap"), alice, alicePass, &imapclient.Options{
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(d *imapclient.UnilateralDataMailbox) {
				if d.NumMessages != nil {
					mu.Lock()
					exists = append(exists, *d.NumMessages)
					mu.Unlock()
				}
			},
		},
	})
	sel, err := c.Select("INBOX", nil).Wait()
	require.NoError(t, err)
	require.EqualValues(t, 0, sel.NumMessages)
	idle, err := c.Idle()
	require.NoError(t, err)

	require.NoError(t, sendMX(t, ts.Addr("smtp"), "bob@remote.test", []string{alice}, message("bob@remote.test", alice, "during idle", "ping")))
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(exists) > 0 && exists[len(exists)-1] == 1
	}, waitFor, 20*time.Millisecond, "* 1 EXISTS during IDLE")
	require.NoError(t, idle.Close())
	require.NoError(t, idle.Wait())

	msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{Envelope: true}).Collect()
	require.NoError(t, err)
	require.Len(t, msgs, 1)
	assert.Equal(t, "during idle", msgs[0].Envelope.Subject)
}

// TestAliasListCatchAllPlus: the directory flags route mail as documented.
func TestAliasListCatchAllPlus(t *testing.T) {
	ts := startServer(t, "",
		"-user", alice+":"+alicePass,
		"-user", "carol@example.test:carol-secret",
		"-alias", "sales@example.test=alice@example.test",
		"-list", "team@example.test=alice@example.test,carol@example.test",
		"-catchall", "example.test=carol@example.test",
	)
	mx := ts.Addr("smtp")
	for _, rcpt := range []string{"sales@example.test", "team@example.test", "whoever@example.test", "alice+Archive@example.test"} {
		require.NoError(t, sendMX(t, mx, "bob@remote.test", []string{rcpt}, message("bob@remote.test", rcpt, "to "+rcpt, "x")), rcpt)
	}
	aliceInbox := waitIMAP(t, ts.Addr("imap"), alice, alicePass, "INBOX", 2)
	assert.Contains(t, aliceInbox[0], "Subject: to sales@example.test")
	assert.Contains(t, aliceInbox[1], "Subject: to team@example.test")
	aliceArchive := waitIMAP(t, ts.Addr("imap"), alice, alicePass, "Archive", 1)
	assert.Contains(t, aliceArchive[0], "Subject: to alice+Archive@example.test", "plus-addressing files into the folder")
	carol := waitIMAP(t, ts.Addr("imap"), "carol@example.test", "carol-secret", "INBOX", 2)
	assert.Contains(t, carol[0], "Subject: to team@example.test")
	assert.Contains(t, carol[1], "Subject: to whoever@example.test", "catch-all")
}

// recordingRelay is a go-smtp server that keeps what it is sent.
type recordingRelay struct {
	mu    sync.Mutex
	rcpts []string
	data  []string
}

func (r *recordingRelay) NewSession(*smtp.Conn) (smtp.Session, error) {
	return &relaySession{r: r}, nil
}

type relaySession struct {
	r     *recordingRelay
	rcpts []string
}

func (s *relaySession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *relaySession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.rcpts = append(s.rcpts, to)
	return nil
}
func (s *relaySession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	s.r.rcpts = append(s.r.rcpts, s.rcpts...)
	s.r.data = append(s.r.data, string(b))
	return nil
}
func (s *relaySession) Reset()        { s.rcpts = nil }
func (s *relaySession) Logout() error { return nil }

// TestSmarthost: with -relay, remote mail goes to the smarthost and no DNS
// is asked (the -dns server given would fail every query).
func TestSmarthost(t *testing.T) {
	rec := &recordingRelay{}
	srv := smtp.NewServer(rec)
	srv.Domain = "smarthost.test"
	port := testutil.FreePort(t)
	srv.Addr = fmt.Sprintf("127.0.0.1:%d", port)
	go srv.ListenAndServe()
	t.Cleanup(func() { srv.Close() })
	dns := dnstest.NewServer(t)
	dns.SetBehavior(dnstest.AllNames, dnstest.ServFail)

	a := startServer(t, "", "-user", alice+":"+alicePass, "-dns", dns.Addr(),
		"-relay", srv.Addr, "-relay-tls", "none")
	require.Eventually(t, func() bool {
		return submit(t, a.Addr("submission"), alice, alicePass, alice, []string{"far@away.test"},
			message(alice, "far@away.test", "via smarthost", "x")) == nil
	}, waitFor, 200*time.Millisecond)
	require.Eventually(t, func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return len(rec.data) == 1
	}, waitFor, 50*time.Millisecond, "the smarthost received the message")
	rec.mu.Lock()
	defer rec.mu.Unlock()
	assert.Equal(t, []string{"far@away.test"}, rec.rcpts)
	assert.Contains(t, rec.data[0], "Subject: via smarthost")
	assert.Zero(t, dns.Queries(), "no DNS lookups with a smarthost")
}
