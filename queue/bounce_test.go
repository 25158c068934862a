package queue

import (
	"bufio"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks"
)

// parsedDSN is a DSN read back with go-message.
type parsedDSN struct {
	header    gomessage.Header
	human     string
	perMsg    textproto.Header
	rcpts     []textproto.Header
	origType  string
	orig      string
	partTypes []string
}

func parseDSN(t *testing.T, raw string) parsedDSN {
	t.Helper()
	ent, err := gomessage.Read(strings.NewReader(raw))
	require.NoError(t, err)
	var p parsedDSN
	p.header = ent.Header
	mt, params, err := ent.Header.ContentType()
	require.NoError(t, err)
	require.Equal(t, "multipart/report", mt)
	require.Equal(t, "delivery-status", params["report-type"])
	mr := ent.MultipartReader()
	require.NotNil(t, mr)
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		pt, _, err := part.Header.ContentType()
		require.NoError(t, err)
		p.partTypes = append(p.partTypes, pt)
		b, err := io.ReadAll(part.Body)
		require.NoError(t, err)
		switch len(p.partTypes) {
		case 1:
			p.human = string(b)
		case 2:
			require.Equal(t, "message/delivery-status", pt)
			// RFC 3464 2.1: blocks of header-like fields separated by
			// blank lines.
			blocks := strings.Split(strings.TrimRight(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n"), "\n\n")
			for i, blk := range blocks {
				h, err := textproto.ReadHeader(bufio.NewReader(strings.NewReader(blk + "\n\n")))
				require.NoError(t, err)
				if i == 0 {
					p.perMsg = h
				} else {
					p.rcpts = append(p.rcpts, h)
				}
			}
		case 3:
			p.origType = pt
			p.orig = string(b)
		}
	}
	return p
}

func TestBounceDSN(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			clk := newFakeClock()
			n := make(notices, 10)
			d := newScripted().
				script("bob@example.com", err550).
				script("carol@example.com", nil).
				script("dave@example.com", mailblocks.NewError(552, mailblocks.EnhancedCode{5, 2, 2}, "Mailbox full"))
			q := startQueue(t, kind, d, Options{Clock: clk.Now, Bounce: n.handler(), Hostname: "mta.example.org"})
			e := env("alice@example.org", "bob@example.com", "carol@example.com", "dave@example.com")
			e.EnvelopeID = "QQ314159"
			e.Recipients[0].OriginalRecipient = "rfc822;Bob@Example.COM"
			t0 := clk.Now()
			enqueue(t, q, e)

			b := n.next(t)
			assert.Equal(t, "", b.env.From, "bounces have the null sender")
			require.Len(t, b.env.Recipients, 1)
			assert.Equal(t, "alice@example.org", b.env.Recipients[0].Address)

			r := parseDSN(t, b.body)
			assert.Equal(t, "Mail Delivery System <MAILER-DAEMON@mta.example.org>", r.header.Get("From"))
			assert.Equal(t, "<alice@example.org>", r.header.Get("To"))
			assert.Equal(t, "Undelivered Mail Returned to Sender", r.header.Get("Subject"))
			assert.Equal(t, "auto-replied", r.header.Get("Auto-Submitted"))
			assert.NotEmpty(t, r.header.Get("Message-Id"))
			assert.NotEmpty(t, r.header.Get("Date"))
			assert.Equal(t, []string{"text/plain", "message/delivery-status", "text/rfc822-headers"}, r.partTypes)
			assert.Contains(t, r.human, "<bob@example.com>: failed: smtp; 550 5.1.1 No such user here")

			assert.Equal(t, "dns; mta.example.org", r.perMsg.Get("Reporting-MTA"))
			assert.Equal(t, "QQ314159", r.perMsg.Get("Original-Envelope-Id"))
			assert.Equal(t, t0.Format(dateFormat), r.perMsg.Get("Arrival-Date"))

			require.Len(t, r.rcpts, 2, "carol was delivered and is not in the bounce")
			bob := r.rcpts[0]
			assert.Equal(t, "rfc822;Bob@Example.COM", bob.Get("Original-Recipient"))
			assert.Equal(t, "rfc822; bob@example.com", bob.Get("Final-Recipient"))
			assert.Equal(t, "failed", bob.Get("Action"))
			assert.Equal(t, "5.1.1", bob.Get("Status"))
			assert.Equal(t, "dns; mx.example.net", bob.Get("Remote-MTA"))
			assert.Equal(t, "smtp; 550 5.1.1 No such user here", bob.Get("Diagnostic-Code"))
			assert.Equal(t, t0.Format(dateFormat), bob.Get("Last-Attempt-Date"))
			dave := r.rcpts[1]
			assert.Equal(t, "rfc822; dave@example.com", dave.Get("Final-Recipient"))
			assert.False(t, dave.Has("Original-Recipient"))
			assert.Equal(t, "5.2.2", dave.Get("Status"))
			assert.Equal(t, "smtp; 552 5.2.2 Mailbox full", dave.Get("Diagnostic-Code"))

			// RET absent: the headers only.
			h, err := textproto.ReadHeader(bufio.NewReader(strings.NewReader(r.orig)))
			require.NoError(t, err)
			assert.Equal(t, "Hello", h.Get("Subject"))
			assert.NotContains(t, r.orig, "Hi Bob.")
			waitEmpty(t, q)
		})
	}
}

func TestBounceRetFull(t *testing.T) {
	tests := []struct {
		name     string
		body     mailblocks.BodyType
		limit    int64
		wantType string
	}{
		{"full", mailblocks.Body8BitMIME, 0, "message/rfc822"},
		{"binary body: headers only", mailblocks.BodyBinaryMIME, 0, "text/rfc822-headers"},
		{"too big: headers only", "", int64(len(testBody)) - 1, "text/rfc822-headers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := make(notices, 10)
			d := newScripted().script("bob@example.com", err550)
			q := startQueue(t, "file", d, Options{Bounce: n.handler(), ReturnSizeLimit: tt.limit})
			e := env("alice@example.org", "bob@example.com")
			e.Return = mailblocks.ReturnFull
			e.Body = tt.body
			enqueue(t, q, e)
			b := n.next(t)
			if tt.body != "" {
				assert.Equal(t, mailblocks.Body8BitMIME, b.env.Body)
			}
			r := parseDSN(t, b.body)
			assert.Equal(t, tt.wantType, r.origType)
			if tt.wantType == "message/rfc822" {
				assert.Equal(t, testBody, r.orig)
				assert.Contains(t, r.human, "It's attached below.")
			} else {
				assert.NotContains(t, r.orig, "Hi Bob.")
				assert.Contains(t, r.orig, "Subject: Hello")
			}
		})
	}
}

// TestBounceDefaultHandler: without Options.Bounce the DSN is queued and
// delivered like any other message.
func TestBounceDefaultHandler(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			d := newScripted().script("bob@example.com", err550)
			q := startQueue(t, kind, d, Options{})
			enqueue(t, q, env("alice@example.org", "bob@example.com"))
			assert.Equal(t, []string{"bob@example.com"}, d.next(t).rcpts())
			b := d.next(t)
			assert.Equal(t, "", b.env.From)
			assert.Equal(t, []string{"alice@example.org"}, b.rcpts())
			r := parseDSN(t, b.body)
			assert.Equal(t, "failed", r.rcpts[0].Get("Action"))
			waitEmpty(t, q)
		})
	}
}

func TestNullSender(t *testing.T) {
	t.Run("to postmaster", func(t *testing.T) {
		n := make(notices, 10)
		d := newScripted().script("alice@example.org", err550)
		q := startQueue(t, "memory", d, Options{Bounce: n.handler(), Postmaster: "postmaster@mta.example.org"})
		enqueue(t, q, env("", "alice@example.org"))
		b := n.next(t)
		assert.Equal(t, "", b.env.From)
		assert.Equal(t, "postmaster@mta.example.org", b.env.Recipients[0].Address)
		r := parseDSN(t, b.body)
		assert.Equal(t, "rfc822; alice@example.org", r.rcpts[0].Get("Final-Recipient"))
		assert.Contains(t, r.human, "was itself a delivery notification")
	})
	for _, tc := range []struct{ name, postmaster, rcpt string }{
		{"no postmaster", "", "alice@example.org"},
		{"postmaster itself fails", "postmaster@mta.example.org", "Postmaster@mta.example.org"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := make(notices, 10)
			ev := make(events, 10)
			d := newScripted().script(tc.rcpt, err550)
			q := startQueue(t, "memory", d, Options{Bounce: n.handler(), Postmaster: tc.postmaster, OnEvent: ev.on})
			enqueue(t, q, env("", tc.rcpt))
			ev.nextKind(t, EventBounced)
			waitEmpty(t, q) // the notice decision happens before removal
			assert.Empty(t, n)
		})
	}
	t.Run("no delay notice", func(t *testing.T) {
		clk := newFakeClock()
		n := make(notices, 10)
		ev := make(events, 10)
		d := newScripted().script("alice@example.org", err451, nil)
		q := startQueue(t, "memory", d, Options{Bounce: n.handler(), Clock: clk.Now, DelayWarning: time.Nanosecond, OnEvent: ev.on})
		enqueue(t, q, env("", "alice@example.org"))
		ev.nextKind(t, EventDeferred)
		clk.Advance(time.Hour)
		q.Wake()
		ev.nextKind(t, EventDelivered)
		waitEmpty(t, q)
		assert.Empty(t, n)
	})
}

func TestNotify(t *testing.T) {
	never := []mailblocks.DSNNotify{mailblocks.NotifyNever}
	success := []mailblocks.DSNNotify{mailblocks.NotifySuccess, mailblocks.NotifyFailure}
	tests := []struct {
		name      string
		notify    []mailblocks.DSNNotify
		err       error
		remoteDSN bool
		host      string
		action    string // "" = no notice
	}{
		{"NEVER suppresses bounce", never, err550, false, "mx", ""},
		{"default bounces", nil, err550, false, "mx", "failed"},
		{"default no success notice", nil, nil, false, "mx", ""},
		{"SUCCESS relayed to non-DSN server", success, nil, false, "mx.example.net", "relayed"},
		{"SUCCESS delivered locally", success, nil, false, "", "delivered"},
		{"SUCCESS passed on to DSN server", success, nil, true, "mx", ""},
		{"FAILURE only, no success notice", []mailblocks.DSNNotify{mailblocks.NotifyFailure}, nil, false, "mx", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := make(notices, 10)
			d := newScripted().script("bob@example.com", tt.err)
			d.remoteDSN, d.host = tt.remoteDSN, tt.host
			q := startQueue(t, "memory", d, Options{Bounce: n.handler()})
			e := env("alice@example.org", "bob@example.com")
			e.Recipients[0].Notify = tt.notify
			enqueue(t, q, e)
			d.next(t)
			waitEmpty(t, q)
			if tt.action == "" {
				assert.Empty(t, n)
				return
			}
			r := parseDSN(t, n.next(t).body)
			assert.Equal(t, tt.action, r.rcpts[0].Get("Action"))
			if tt.err == nil {
				assert.Equal(t, "2.0.0", r.rcpts[0].Get("Status"))
				assert.Equal(t, "Successful Mail Delivery Report", r.header.Get("Subject"))
				assert.False(t, r.rcpts[0].Has("Diagnostic-Code"))
			}
		})
	}
}

// TestDelayNoticeOnce: NOTIFY=DELAY gets exactly one delay notice.
func TestDelayNoticeOnce(t *testing.T) {
	clk := newFakeClock()
	n := make(notices, 10)
	ev := make(events, 100)
	d := newScripted().script("bob@example.com", errNet, errNet, errNet, nil)
	q := startQueue(t, "file", d, Options{Bounce: n.handler(), Clock: clk.Now, DelayWarning: time.Minute, OnEvent: ev.on})
	e := env("alice@example.org", "bob@example.com")
	e.Recipients[0].Notify = []mailblocks.DSNNotify{mailblocks.NotifyDelay}
	enqueue(t, q, e)
	for range 3 {
		ev.nextKind(t, EventDeferred)
		clk.Advance(time.Hour)
		q.Wake()
	}
	ev.nextKind(t, EventDelivered)
	waitEmpty(t, q)
	r := parseDSN(t, n.next(t).body)
	assert.Equal(t, "delayed", r.rcpts[0].Get("Action"))
	assert.Equal(t, "4.0.0", r.rcpts[0].Get("Status"))
	assert.Equal(t, "X-Mailblocks; "+errNet.Error(), r.rcpts[0].Get("Diagnostic-Code"))
	assert.Empty(t, n, "one delay notice only, and no failure notice")
}

func TestBounceHandlerError(t *testing.T) {
	// A handler that refuses the notice for good is logged; the queue
	// goes on (temporary failures: TestNoticeRetry).
	ev := make(events, 10)
	d := newScripted().script("bob@example.com", err550)
	q := startQueue(t, "memory", d, Options{OnEvent: ev.on, Bounce: BounceFunc(func(ctx context.Context, env *mailblocks.Envelope, body io.Reader) error {
		return mailblocks.ErrNoSuchUser
	})})
	enqueue(t, q, env("alice@example.org", "bob@example.com"))
	ev.nextKind(t, EventBounced)
	waitEmpty(t, q)
}

// TestOneBouncePerMessage: the failures of a message's domains are
// reported in one notice once no delivery of it is in flight.
func TestOneBouncePerMessage(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			n := make(notices, 10)
			d := newScripted().script("a@x.example", err550).script("b@y.example", err550).
				script("c@z.example", mailblocks.NewError(554, mailblocks.EnhancedCode{5, 7, 1}, "Relay denied"))
			q := openKind(t, kind, t.TempDir(), d, Options{Bounce: n.handler()})
			defer q.Close()
			enqueue(t, q, env("alice@example.org", "a@x.example", "b@y.example", "ok@w.example", "c@z.example"))
			q.Start(context.Background())
			r := parseDSN(t, n.next(t).body)
			require.Len(t, r.rcpts, 3)
			assert.Equal(t, "rfc822; a@x.example", r.rcpts[0].Get("Final-Recipient"))
			assert.Equal(t, "rfc822; b@y.example", r.rcpts[1].Get("Final-Recipient"))
			assert.Equal(t, "rfc822; c@z.example", r.rcpts[2].Get("Final-Recipient"))
			assert.Equal(t, "5.7.1", r.rcpts[2].Get("Status"))
			waitEmpty(t, q)
			assert.Empty(t, n)
		})
	}
}

// TestNoticeSurvivesCrash: a notice owed while another delivery of the
// message is in flight is on disk, and a crash at that moment does not
// lose it.
func TestNoticeSurvivesCrash(t *testing.T) {
	dir := t.TempDir()
	release := make(chan struct{})
	d := newScripted().script("a@x.example", err550)
	d.gate = func(env *mailblocks.Envelope) {
		if env.Recipients[0].Address == "b@y.example" {
			<-release
		}
	}
	n := make(notices, 10)
	q := openKind(t, "file", dir, d, Options{Bounce: n.handler()})
	id := enqueue(t, q, env("alice@example.org", "a@x.example", "b@y.example"))
	q.Start(context.Background())
	st := filepath.Join(dir, "msg", id+stateSuffix)
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(st)
		return err == nil && strings.Contains(string(b), `"notice":1`)
	}, waitTimeout, time.Millisecond)
	// The "crash": a copy of the spool as it is now.
	crashed := t.TempDir()
	require.NoError(t, os.CopyFS(crashed, os.DirFS(dir)))
	close(release)
	r := parseDSN(t, n.next(t).body)
	require.Len(t, r.rcpts, 1)
	require.NoError(t, q.Close())

	d2 := newScripted()
	n2 := make(notices, 10)
	q2 := openKind(t, "file", crashed, d2, Options{Bounce: n2.handler()})
	defer q2.Close()
	r = parseDSN(t, n2.next(t).body)
	require.Len(t, r.rcpts, 1)
	assert.Equal(t, "rfc822; a@x.example", r.rcpts[0].Get("Final-Recipient"))
	q2.Start(context.Background())
	assert.Equal(t, []string{"b@y.example"}, d2.next(t).rcpts())
	waitEmpty(t, q2)
	assert.Empty(t, n2)
}

func TestOneLine(t *testing.T) {
	tests := []struct{ in, want string }{
		{"a\r\n  b\tc ", "a b c"},
		{strings.Repeat("x", 1000), strings.Repeat("x", 900)},
		// A 2-byte character across the 900-byte limit is dropped whole.
		{strings.Repeat("x", 899) + "é" + "y", strings.Repeat("x", 899)},
	}
	for _, tt := range tests {
		got := oneLine(tt.in)
		assert.Equal(t, tt.want, got)
		assert.True(t, utf8.ValidString(got))
	}
}
