package smtpserver

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks"
	"github.com/mailblocks/mailblocks/internal/testutil"
)

const simpleMsg = "From: a@remote.test\r\nTo: alice@example.org\r\nSubject: hi\r\nMessage-ID: <1@remote.test>\r\nDate: Mon, 23 Nov 2026 00:00:00 +0000\r\n\r\nHello.\r\n"

func TestMXGoClient(t *testing.T) {
	rec := newRecorder()
	_, addr := start(t, testOptions(t, rec), MX)

	c, err := smtp.Dial(addr)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Hello("client.test"))
	for _, ext := range []string{"PIPELINING", "8BITMIME", "SIZE", "ENHANCEDSTATUSCODES", "SMTPUTF8", "CHUNKING", "DSN", "STARTTLS"} {
		ok, _ := c.Extension(ext)
		assert.True(t, ok, ext)
	}
	ok, size := c.Extension("SIZE")
	require.True(t, ok)
	assert.Equal(t, fmt.Sprint(25<<20), size)
	ok, _ = c.Extension("AUTH")
	assert.False(t, ok, "no AUTH on MX by default, and not before TLS")
	ok, _ = c.Extension("REQUIRETLS")
	assert.False(t, ok, "REQUIRETLS only over TLS")

	err = c.SendMail("a@remote.test", []string{"alice@example.org"}, strings.NewReader(simpleMsg))
	require.NoError(t, err)
	m := rec.next(t)
	assert.Equal(t, "a@remote.test", m.env.From)
	assert.Equal(t, []mailblocks.Recipient{{Address: "alice@example.org"}}, m.env.Recipients)
	assert.Equal(t, "client.test", m.env.Helo)
	assert.NotEmpty(t, m.env.ID)
	assert.NotNil(t, m.env.RemoteAddr)
	assert.False(t, m.env.Received.IsZero())
	assert.True(t, strings.HasPrefix(m.body, "Received: from client.test (unknown [127.0.0.1])\r\n\tby mx.test (mailblocks) with ESMTP id "+m.env.ID+"\r\n\tfor <alice@example.org>;"), m.body)
	assert.True(t, strings.HasSuffix(m.body, simpleMsg), "client's message follows unchanged")
}

func TestNullSenderAndDSN(t *testing.T) {
	rec := newRecorder()
	_, addr := start(t, testOptions(t, rec), MX)
	s := dial(t, addr)
	s.greet()
	s.expect("MAIL FROM:<> RET=HDRS ENVID=abc+2Bdef SIZE=100 BODY=8BITMIME", "250")
	s.expect("RCPT TO:<alice@example.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;alice@example.org", "250")
	s.expect("RCPT TO:<bob@example.org>", "250")
	assert.Equal(t, "250 2.0.0 OK: queued", s.data(simpleMsg))
	m := rec.next(t)
	assert.Equal(t, "", m.env.From)
	assert.Equal(t, mailblocks.ReturnHeaders, m.env.Return)
	assert.Equal(t, "abc+def", m.env.EnvelopeID)
	assert.Equal(t, int64(100), m.env.Size)
	assert.Equal(t, mailblocks.Body8BitMIME, m.env.Body)
	require.Len(t, m.env.Recipients, 2)
	assert.Equal(t, []mailblocks.DSNNotify{mailblocks.NotifySuccess, mailblocks.NotifyFailure}, m.env.Recipients[0].Notify)
	assert.Equal(t, "RFC822;alice@example.org", m.env.Recipients[0].OriginalRecipient)
	assert.Nil(t, m.env.Recipients[1].Notify)
	assert.NotContains(t, m.body, "\tfor <", "no 'for' clause with several recipients")
}

func TestRelayControl(t *testing.T) {
	rec := newRecorder()
	opts := testOptions(t, rec)
	_, addr := start(t, opts, MX)
	tests := []struct {
		rcpt string
		want string
	}{
		{"<alice@example.org>", "250 "},
		{"<ALICE@Example.ORG>", "250 "},
		{"<postmaster@example.org>", "250 "},
		{"<nobody@example.org>", "550 5.1.1"},
		{"<full@example.org>", "552 5.2.2"},
		{"<someone@remote.test>", "554 5.7.1"},
		// The classic relay tricks (Postfix allow_untrusted_routing=no).
		{"<user%remote.test@example.org>", "550 5.7.1"},
		{`<"user@remote.test"@example.org>`, "550 5.7.1"},
		{"<user@remote.test@example.org>", "550 5.7.1"},
		{"<@example.org:user@remote.test>", "554 5.7.1"},
		{"<@example.org,@example.net:user@remote.test>", "554 5.7.1"},
		{"<remote.test!user@example.org>", "550 5.7.1"},
		{"<user%remote.test>", "501 5.5.2"},
		{"<user>", "501 5.5.2"},
		{"<用户@example.org>", "553 5.6.7"},
	}
	for _, tt := range tests {
		t.Run(tt.rcpt, func(t *testing.T) {
			s := dial(t, addr)
			s.greet()
			s.expect("MAIL FROM:<a@remote.test>", "250")
			s.expect("RCPT TO:"+tt.rcpt, tt.want)
			s.expect("QUIT", "221")
		})
	}
}

func TestRelayTrustedNetwork(t *testing.T) {
	rec := newRecorder()
	opts := testOptions(t, rec)
	opts.TrustedNetworks = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	s := greeted(t, opts, MX)
	s.expect("MAIL FROM:<a@example.org>", "250")
	s.expect("RCPT TO:<someone@remote.test>", "250")
	s.expect("RCPT TO:<nobody@example.org>", "550 5.1.1")
	assert.Contains(t, s.data(simpleMsg), "250 ")
	m := rec.next(t)
	assert.Equal(t, "someone@remote.test", m.env.Recipients[0].Address)
}

func TestSizeLimits(t *testing.T) {
	rec := newRecorder()
	opts := testOptions(t, rec)
	opts.MaxMessageBytes = 1000
	_, addr := start(t, opts, MX)
	s := dial(t, addr)
	ehlo := s.greet()
	assert.Contains(t, ehlo, "250-SIZE 1000")
	s.expect("MAIL FROM:<a@remote.test> SIZE=1001", "552 5.3.4")
	s.expect("MAIL FROM:<a@remote.test> SIZE=1000", "250")
	s.expect("RCPT TO:<alice@example.org>", "250")
	big := "Subject: big\r\n\r\n" + strings.Repeat(strings.Repeat("x", 70)+"\r\n", 30)
	assert.True(t, strings.HasPrefix(s.data(big), "552 5.3.4"))
	// The session continues.
	s.expect("MAIL FROM:<a@remote.test>", "250")
	s.expect("RCPT TO:<alice@example.org>", "250")
	assert.True(t, strings.HasPrefix(s.data(simpleMsg), "250 "))
	rec.next(t)
	assert.Equal(t, 1, rec.count())

	// BDAT over the limit.
	s.expect("MAIL FROM:<a@remote.test>", "250")
	s.expect("RCPT TO:<alice@example.org>", "250")
	chunk := strings.Repeat(strings.Repeat("y", 98)+"\r\n", 20)
	s.write(fmt.Sprintf("BDAT %d LAST\r\n%s", len(chunk), chunk))
	assert.True(t, strings.HasPrefix(s.reply()[0], "552 5.3.4"))
	s.expect("NOOP", "250")
}

func TestMaxRecipients(t *testing.T) {
	rec := newRecorder()
	opts := testOptions(t, rec)
	opts.MaxRecipients = 2
	s := greeted(t, opts, MX)
	s.expect("MAIL FROM:<a@remote.test>", "250")
	s.expect("RCPT TO:<alice@example.org>", "250")
	s.expect("RCPT TO:<bob@example.org>", "250")
	s.expect("RCPT TO:<postmaster@example.org>", "452 4.5.3")
	assert.True(t, strings.HasPrefix(s.data(simpleMsg), "250"))
	assert.Len(t, rec.next(t).env.Recipients, 2)
}

func TestBDAT(t *testing.T) {
	rec := newRecorder()
	_, addr := start(t, testOptions(t, rec), MX)
	s := dial(t, addr)
	s.greet()
	s.expect("MAIL FROM:<a@remote.test>", "250")
	s.expect("RCPT TO:<alice@example.org>", "250")
	half := len(simpleMsg) / 2
	s.write(fmt.Sprintf("BDAT %d\r\n%s", half, simpleMsg[:half]))
	assert.True(t, strings.HasPrefix(s.reply()[0], "250"))
	s.write(fmt.Sprintf("BDAT %d LAST\r\n%s", len(simpleMsg)-half, simpleMsg[half:]))
	assert.True(t, strings.HasPrefix(s.reply()[0], "250"))
	m := rec.next(t)
	assert.True(t, strings.HasSuffix(m.body, simpleMsg))
}

func TestBareLFAndNUL(t *testing.T) {
	tests := []struct {
		name    string
		policy  BareLFPolicy
		msg     string
		want    string
		wantMsg string
	}{
		{"bare LF rejected", BareLFReject, "Subject: x\r\n\r\nline\nline2\r\n", "550 5.5.2", ""},
		{"bare LF in header rejected", BareLFReject, "Subject: x\n\r\nbody\r\n", "550 5.5.2", ""},
		{"smuggling attempt rejected", BareLFReject, "Subject: x\r\n\r\nbody\n.\r\nMAIL FROM:<evil@x>\r\n", "550 5.5.2", ""},
		{"bare LF normalised", BareLFNormalize, "Subject: x\r\n\r\nline\nline2\r\n", "250", "Subject: x\r\n\r\nline\r\nline2\r\n"},
		{"NUL rejected", BareLFReject, "Subject: x\r\n\r\nli\x00ne\r\n", "554 5.6.0", ""},
		{"NUL rejected when normalising", BareLFNormalize, "Subject: x\r\n\r\nli\x00ne\r\n", "554 5.6.0", ""},
		{"bare CR kept", BareLFReject, "Subject: x\r\n\r\nli\rne\r\n", "250", "Subject: x\r\n\r\nli\rne\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder()
			opts := testOptions(t, rec)
			opts.BareLF = tt.policy
			_, addr := start(t, opts, MX)
			s := dial(t, addr)
			s.greet()
			s.expect("MAIL FROM:<a@remote.test>", "250")
			s.expect("RCPT TO:<alice@example.org>", "250")
			got := s.data(tt.msg)
			require.True(t, strings.HasPrefix(got, tt.want), "got %q", got)
			if tt.wantMsg != "" {
				assert.True(t, strings.HasSuffix(rec.next(t).body, tt.wantMsg))
			} else {
				assert.Equal(t, 0, rec.count())
			}
			// The session goes on.
			s.expect("NOOP", "250")
		})
	}
}

func TestLoopDetection(t *testing.T) {
	rec := newRecorder()
	opts := testOptions(t, rec)
	opts.MaxHops = 5
	s := greeted(t, opts, MX)
	for _, n := range []int{4, 5} {
		s.expect("MAIL FROM:<a@remote.test>", "250")
		s.expect("RCPT TO:<alice@example.org>", "250")
		msg := strings.Repeat("Received: from x by y; Mon, 23 Nov 2026 00:00:00 +0000\r\n", n) + simpleMsg
		got := s.data(msg)
		if n < 5 {
			assert.True(t, strings.HasPrefix(got, "250"), got)
		} else {
			assert.True(t, strings.HasPrefix(got, "554 5.4.6"), got)
		}
	}
	assert.Equal(t, 1, rec.count())
}

func TestHandlerErrors(t *testing.T) {
	rec := newRecorder()
	_, addr := start(t, testOptions(t, rec), MX)
	s := dial(t, addr)
	s.greet()
	for _, tt := range []struct {
		err  error
		want string
	}{
		{mailblocks.ErrMailboxFull, "552 5.2.2 Mailbox full"},
		{fmt.Errorf("wrapped: %w", mailblocks.ErrTemporary.WithMessage("Queue busy")), "451 4.3.0 Queue busy"},
		{errors.New("disk on fire at /secret/path"), "451 4.3.0 Temporary local problem"},
	} {
		rec.mu.Lock()
		rec.err = tt.err
		rec.mu.Unlock()
		s.expect("MAIL FROM:<a@remote.test>", "250")
		s.expect("RCPT TO:<alice@example.org>", "250")
		got := s.data(simpleMsg)
		assert.True(t, strings.HasPrefix(got, tt.want), got)
		assert.NotContains(t, got, "secret")
	}
}

func TestDirectoryFailureIsTemporary(t *testing.T) {
	rec := newRecorder()
	opts := testOptions(t, rec)
	dir := newFakeDir()
	dir.fail = errors.New("database down")
	opts.Directory = dir
	s := greeted(t, opts, MX)
	s.expect("MAIL FROM:<a@remote.test>", "250")
	got := s.expect("RCPT TO:<alice@example.org>", "451 4.3.0")
	assert.NotContains(t, got, "database")
}

func TestSMTPUTF8(t *testing.T) {
	rec := newRecorder()
	_, addr := start(t, testOptions(t, rec), MX)
	s := dial(t, addr)
	s.greet()
	s.expect("MAIL FROM:<发件人@remote.test>", "553 5.6.7")
	s.expect("MAIL FROM:<发件人@remote.test> SMTPUTF8", "250")
	s.expect("RCPT TO:<用户@example.org>", "250")
	assert.True(t, strings.HasPrefix(s.data("Subject: 你好\r\n\r\n你好\r\n"), "250"))
	m := rec.next(t)
	assert.True(t, m.env.SMTPUTF8)
	assert.Equal(t, "用户@example.org", m.env.Recipients[0].Address)
	assert.Contains(t, m.body, "with UTF8SMTP id")
}

func TestLongLine(t *testing.T) {
	rec := newRecorder()
	opts := testOptions(t, rec)
	opts.MaxLineLength = 1000
	_, addr := start(t, opts, MX)
	s := dial(t, addr)
	s.greet()
	s.expect("MAIL FROM:<a@remote.test>", "250")
	s.expect("RCPT TO:<alice@example.org>", "250")
	// 998 characters + CRLF is the RFC 5322 maximum and passes.
	assert.True(t, strings.HasPrefix(s.data("Subject: x\r\n\r\n"+strings.Repeat("a", 998)+"\r\n"), "250"))
	s.expect("MAIL FROM:<a@remote.test>", "250")
	s.expect("RCPT TO:<alice@example.org>", "250")
	s.expect("DATA", "354")
	s.write("Subject: x\r\n\r\n" + strings.Repeat("a", 3000) + "\r\n.\r\n")
	got := s.reply()[0]
	assert.True(t, strings.HasPrefix(got, "500 5.5.2"), got)
	assert.True(t, s.closed())
	assert.Equal(t, 1, rec.count())

	// A command line over the limit ends the session (go-smtp's reply).
	s = dial(t, addr)
	s.greet()
	s.expect("NOOP "+strings.Repeat("n", 1200), "500 5.4.0")
	assert.True(t, s.closed())
}

func TestMaxErrors(t *testing.T) {
	rec := newRecorder()
	opts := testOptions(t, rec)
	opts.MaxErrors = 3
	s := greeted(t, opts, MX)
	s.expect("MAIL FROM:<a@remote.test>", "250")
	s.expect("RCPT TO:<x@remote.test>", "554 5.7.1")
	s.expect("RCPT TO:<y@remote.test>", "554 5.7.1")
	s.expect("RCPT TO:<z@remote.test>", "421 4.7.0")
	assert.True(t, s.closed())
}

func TestRequireTLS(t *testing.T) {
	rec := newRecorder()
	_, addr := start(t, testOptions(t, rec), MX)
	s := dial(t, addr)
	s.greet()
	s.expect("MAIL FROM:<a@remote.test> REQUIRETLS", "530 5.7.10")

	c, err := smtp.DialStartTLS(addr, clientTLS())
	require.NoError(t, err)
	defer c.Close()
	ok, _ := c.Extension("REQUIRETLS")
	assert.True(t, ok)
	require.NoError(t, c.Mail("a@remote.test", &smtp.MailOptions{RequireTLS: true}))
	require.NoError(t, c.Rcpt("alice@example.org", nil))
	w, err := c.Data()
	require.NoError(t, err)
	_, err = w.Write([]byte(simpleMsg))
	require.NoError(t, err)
	require.NoError(t, w.Close())
	m := rec.next(t)
	assert.True(t, m.env.RequireTLS)
	require.NotNil(t, m.env.TLS)
	assert.Contains(t, m.body, "with ESMTPS id")
	assert.Contains(t, m.body, "(using TLS1.3 with cipher")
}

func TestSubmission(t *testing.T) {
	rec := newRecorder()
	_, addr := start(t, testOptions(t, rec), Submission)

	// Before TLS: no AUTH, and MAIL needs AUTH.
	s := dial(t, addr)
	ehlo := s.greet()
	assert.Contains(t, ehlo, "250-STARTTLS")
	for _, l := range ehlo {
		assert.NotContains(t, l, "AUTH")
	}
	s.expect("AUTH PLAIN AGFsaWNlQGV4YW1wbGUub3JnAHNlY3JldA==", "523 5.7.10")
	s.expect("MAIL FROM:<alice@example.org>", "530 5.7.0")

	for _, mech := range []string{"PLAIN", "LOGIN"} {
		t.Run(mech, func(t *testing.T) {
			c, err := smtp.DialStartTLS(addr, clientTLS())
			require.NoError(t, err)
			defer c.Close()
			ok, mechs := c.Extension("AUTH")
			require.True(t, ok)
			assert.Equal(t, "PLAIN LOGIN", mechs)
			var cl sasl.Client
			if mech == "PLAIN" {
				cl = sasl.NewPlainClient("", "alice@example.org", "wrong")
			} else {
				cl = sasl.NewLoginClient("alice@example.org", "wrong")
			}
			err = c.Auth(cl)
			var se *smtp.SMTPError
			require.ErrorAs(t, err, &se)
			assert.Equal(t, 535, se.Code)
			if mech == "PLAIN" {
				cl = sasl.NewPlainClient("", "alice@example.org", "secret")
			} else {
				cl = sasl.NewLoginClient("alice@example.org", "secret")
			}
			require.NoError(t, c.Auth(cl))
			// Someone else's address is refused, the own one and an alias pass.
			err = c.Mail("bob@example.org", nil)
			require.ErrorAs(t, err, &se)
			assert.Equal(t, 553, se.Code)
			assert.Equal(t, smtp.EnhancedCode{5, 7, 1}, se.EnhancedCode)
			require.NoError(t, c.Mail("postmaster@example.org", nil))
			require.NoError(t, c.Rcpt("friend@remote.test", nil)) // relaying for an authenticated user
			w, err := c.Data()
			require.NoError(t, err)
			_, err = w.Write([]byte("From: alice@example.org\r\nSubject: no id\r\n\r\nhi\r\n"))
			require.NoError(t, err)
			require.NoError(t, w.Close())
			m := rec.next(t)
			assert.Equal(t, "alice@example.org", m.env.AuthUser)
			assert.Contains(t, m.body, "with ESMTPSA id")
			assert.True(t, hasLine(m.body, "Message-ID: <"+m.env.ID+"@mx.test>"), m.body)
			assert.True(t, hasLine(m.body, "Date: "), m.body)
			assert.True(t, strings.HasSuffix(m.body, "Subject: no id\r\nMessage-ID: <"+m.env.ID+"@mx.test>\r\n"+"Date: "+m.env.Received.Format("Mon, 02 Jan 2006 15:04:05 -0700")+"\r\n\r\nhi\r\n"), m.body)
		})
	}
}

func TestSenderPolicies(t *testing.T) {
	tests := []struct {
		policy SenderPolicy
		from   string
		ok     bool
	}{
		{SenderOwned, "alice@example.org", true},
		{SenderOwned, "ALICE@example.org", true},
		{SenderOwned, "postmaster@example.org", true},
		{SenderOwned, "team@example.org", true},
		{SenderOwned, "bob@example.org", false},
		{SenderOwned, "", true},
		{SenderExact, "postmaster@example.org", false},
		{SenderExact, "alice@example.org", true},
		{SenderSameDomain, "anything@example.org", true},
		{SenderSameDomain, "alice@example.net", false},
		{SenderAny, "alice@elsewhere.test", true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.policy, tt.from), func(t *testing.T) {
			rec := newRecorder()
			opts := testOptions(t, rec)
			opts.SenderPolicy = tt.policy
			opts.AllowInsecureAuth = true
			_, addr := start(t, opts, Submission)
			s := dial(t, addr)
			s.greet()
			s.expect("AUTH PLAIN AGFsaWNlQGV4YW1wbGUub3JnAHNlY3JldA==", "235")
			want := "553 5.7.1"
			if tt.ok {
				want = "250"
			}
			s.expect("MAIL FROM:<"+tt.from+">", want)
		})
	}
}

func TestSubmissions(t *testing.T) {
	rec := newRecorder()
	_, addr := start(t, testOptions(t, rec), Submissions)
	c, err := smtp.DialTLS(addr, clientTLS())
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Hello("client.test"))
	ok, _ := c.Extension("STARTTLS")
	assert.False(t, ok)
	require.NoError(t, c.Auth(sasl.NewPlainClient("", "bob@example.org", "hunter2")))
	require.NoError(t, c.SendMail("bob@example.org", []string{"alice@example.org"}, strings.NewReader(simpleMsg)))
	m := rec.next(t)
	assert.Equal(t, "bob@example.org", m.env.AuthUser)
	assert.NotNil(t, m.env.TLS)
}

func TestServeNeedsConfig(t *testing.T) {
	srv := New(Options{})
	defer srv.Close()
	l := testutil.Listen(t)
	defer l.Close()
	assert.ErrorContains(t, srv.Serve(l, Submission), "Authenticator")
	srv = New(Options{Authenticator: fakeAuth{}})
	assert.ErrorContains(t, srv.Serve(l, Submissions), "TLSConfig")
	assert.ErrorContains(t, srv.Serve(l, Mode(42)), "invalid mode")
}

func TestZeroOptions(t *testing.T) {
	// The zero value works: an MX with no local domain refuses relaying and
	// without handler nothing is accepted.
	srv, addr := start(t, Options{}, MX)
	_ = srv
	s := dial(t, addr)
	s.greet()
	s.expect("MAIL FROM:<a@remote.test>", "250")
	s.expect("RCPT TO:<alice@example.org>", "554 5.7.1")
	s.expect("QUIT", "221")
}

func TestMXAuthRelay(t *testing.T) {
	rec := newRecorder()
	opts := testOptions(t, rec)
	opts.MXAuth = true
	_, addr := start(t, opts, MX)
	c, err := smtp.DialStartTLS(addr, clientTLS())
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Auth(sasl.NewPlainClient("", "alice@example.org", "secret")))
	require.NoError(t, c.SendMail("alice@example.org", []string{"x@remote.test"}, strings.NewReader(simpleMsg)))
	assert.Equal(t, "x@remote.test", rec.next(t).env.Recipients[0].Address)
}

var _ = context.Background

func TestNestedMail(t *testing.T) {
	rec := newRecorder()
	_, addr := start(t, testOptions(t, rec), MX)
	s := dial(t, addr)
	s.greet()
	s.expect("MAIL FROM:<a@remote.test>", "250")
	s.expect("RCPT TO:<alice@example.org>", "250")
	s.expect("MAIL FROM:<b@remote.test>", "503 5.5.1")
	assert.True(t, strings.HasPrefix(s.data(simpleMsg), "250"))
	assert.Equal(t, "a@remote.test", rec.next(t).env.From)
}

func TestListenAndServe(t *testing.T) {
	srv := New(Options{Logger: testLogger(t)})
	done := make(chan error, 1)
	go func() {
		done <- srv.ListenAndServe(Endpoint{Addr: "127.0.0.1:0", Mode: MX}, Endpoint{Addr: "127.0.0.1:0", Mode: LMTP})
	}()
	require.Eventually(t, func() bool {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		return len(srv.listeners) == 2
	}, 10*time.Second, 5*time.Millisecond)
	require.NoError(t, srv.Shutdown(context.Background()))
	select {
	case err := <-done:
		require.ErrorIs(t, err, ErrServerClosed)
	case <-time.After(10 * time.Second):
		t.Fatal("ListenAndServe did not return")
	}
	// Serving after Shutdown is refused.
	l := testutil.Listen(t)
	defer l.Close()
	require.ErrorIs(t, srv.Serve(l, MX), ErrServerClosed)

	// A listen error is returned.
	srv = New(Options{})
	defer srv.Close()
	require.Error(t, srv.ListenAndServe(Endpoint{Addr: "256.0.0.1:0"}))
}

func TestSTARTTLSInjection(t *testing.T) {
	// CVE-2011-0411 style: commands pipelined after STARTTLS in clear text
	// must not be executed inside the TLS session.
	rec := newRecorder()
	_, addr := start(t, testOptions(t, rec), MX)
	s := dial(t, addr)
	s.greet()
	s.write("STARTTLS\r\nMAIL FROM:<injected@evil.test>\r\n")
	require.True(t, strings.HasPrefix(s.reply()[0], "220"))
	tc := tls.Client(s.conn, clientTLS())
	require.NoError(t, tc.Handshake())
	ts := &script{t: t, conn: tc, r: bufio.NewReader(tc)}
	ts.write("EHLO client.test\r\n")
	ts.reply()
	ts.expect("RCPT TO:<alice@example.org>", "502 5.5.1") // no MAIL in this session
}

func TestSubmissionsRefusedOverTLS(t *testing.T) {
	// A connection refused at connect time on an implicit TLS listener is
	// told so inside TLS.
	rec := newRecorder()
	opts := testOptions(t, rec)
	opts.MaxConnectionsPerIP = 1
	_, addr := start(t, opts, Submissions)
	first, err := tls.Dial("tcp", addr, clientTLS())
	require.NoError(t, err)
	defer first.Close()
	line, err := bufio.NewReader(first).ReadString('\n')
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(line, "220"))
	second, err := tls.Dial("tcp", addr, clientTLS())
	require.NoError(t, err)
	defer second.Close()
	line, err = bufio.NewReader(second).ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "421 4.7.0 Too many connections from your address\r\n", line)
}

func TestTooManyErrorsOverTLS(t *testing.T) {
	// The 421 that ends a session is written before the close, inside TLS.
	rec := newRecorder()
	opts := testOptions(t, rec)
	opts.MaxErrors = 1
	_, addr := start(t, opts, Submissions)
	tc, err := tls.Dial("tcp", addr, clientTLS())
	require.NoError(t, err)
	defer tc.Close()
	s := &script{t: t, conn: tc, r: bufio.NewReader(tc)}
	s.greet()
	s.expect("MAIL FROM:<alice@example.org>", "421 4.7.0")
	assert.True(t, s.closed())
}
