package smtpclient

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"os"
	"syscall"
	"testing"

	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks"
	"github.com/mailblocks/mailblocks/resolver"
)

// TestClassify: transient versus permanent is where mail is lost or
// retried forever; every kind of failure is checked.
func TestClassify(t *testing.T) {
	tests := []struct {
		name    string
		command string
		err     error
		code    int
		enh     string
		temp    bool
		remote  bool
	}{
		{"remote 550 with enhanced code", "RCPT TO", &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user"}, 550, "5.1.1", false, true},
		{"remote 450", "RCPT TO", &smtp.SMTPError{Code: 450, EnhancedCode: smtp.EnhancedCode{4, 2, 1}, Message: "busy"}, 450, "4.2.1", true, true},
		{"remote 421", "MAIL FROM", &smtp.SMTPError{Code: 421, Message: "closing"}, 421, "4.0.0", true, true},
		{"remote 554 without enhanced code", "DATA", &smtp.SMTPError{Code: 554, Message: "no"}, 554, "5.0.0", false, true},
		{"enhanced class contradicts code", "RCPT TO", &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "x"}, 451, "4.0.0", true, true},
		{"go-smtp NoEnhancedCode", "RCPT TO", &smtp.SMTPError{Code: 550, EnhancedCode: smtp.NoEnhancedCode, Message: "x"}, 550, "5.0.0", false, true},
		{"unexpected 2xx where an error was", "DATA", &smtp.SMTPError{Code: 250, Message: "ok?"}, 451, "4.5.0", true, true},
		{"wrapped remote reply", "RCPT TO", fmt.Errorf("x: %w", &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 2, 2}, Message: "full"}), 552, "5.2.2", false, true},
		{"connection refused", CmdConnect, &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, 421, "4.4.1", true, false},
		{"connect timeout", CmdConnect, context.DeadlineExceeded, 421, "4.4.1", true, false},
		{"EOF", CmdEndOfData, io.EOF, 421, "4.4.2", true, false},
		{"unexpected EOF", CmdBody, io.ErrUnexpectedEOF, 421, "4.4.2", true, false},
		{"reset by peer", CmdBody, &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", syscall.ECONNRESET)}, 421, "4.4.2", true, false},
		{"closed", "RCPT TO", net.ErrClosed, 421, "4.4.2", true, false},
		{"timeout", "MAIL FROM", os.ErrDeadlineExceeded, 421, "4.4.2", true, false},
		{"cancelled", "MAIL FROM", context.Canceled, 421, "4.4.2", true, false},
		{"certificate", "STARTTLS", x509.UnknownAuthorityError{}, 421, "4.4.2", true, false},
		{"malformed reply", CmdGreeting, textproto.ProtocolError("short response: HELLO"), 451, "4.5.0", true, false},
		{"unknown local error", "MAIL FROM", errors.New("smtp: something odd"), 451, "4.3.0", true, false},
		{"mailblocks error kept", CmdLocal, mailblocks.ErrNeedsSMTPUTF8, 553, "5.6.7", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := classify("mx.test", tt.command, tt.err)
			require.NotNil(t, e)
			assert.Equal(t, tt.code, e.Reply.Code)
			assert.Equal(t, tt.enh, e.Reply.Enhanced.String())
			assert.Equal(t, tt.temp, e.Temporary())
			assert.Equal(t, tt.temp, mailblocks.IsTemporary(e))
			assert.Equal(t, tt.remote, e.Remote)
			assert.Equal(t, tt.command, e.Command)
			assert.Equal(t, "mx.test", e.RemoteHost)
			var me *mailblocks.Error
			require.ErrorAs(t, e, &me)
			var ce *Error
			require.ErrorAs(t, fmt.Errorf("wrapped: %w", e), &ce)
		})
	}
	assert.Nil(t, classify("h", "x", nil))
}

func TestCombine(t *testing.T) {
	perm := newError("a", "greeting", &mailblocks.Error{Code: 554, Enhanced: mailblocks.EnhancedCode{5, 7, 1}})
	temp1 := newError("b", CmdConnect, errConnect)
	temp2 := newError("c", "greeting", &mailblocks.Error{Code: 421, Enhanced: mailblocks.EnhancedCode{4, 3, 2}})
	assert.Equal(t, perm, combine([]*Error{perm}))
	assert.Equal(t, temp1, combine([]*Error{perm, temp1}))
	assert.Equal(t, temp2, combine([]*Error{temp1, perm, temp2}))
	assert.Equal(t, temp1, combine([]*Error{temp1, perm}))
	assert.Nil(t, combine(nil))
}

func TestDNSClassification(t *testing.T) {
	tests := []struct {
		name string
		err  error
		enh  string
		temp bool
	}{
		{"NXDOMAIN", &resolver.Error{Kind: resolver.KindNXDomain}, "5.1.2", false},
		{"null MX", &resolver.Error{Kind: resolver.KindNullMX}, "5.1.10", false},
		{"SERVFAIL", &resolver.Error{Kind: resolver.KindServFail}, "4.4.3", true},
		{"timeout", &resolver.Error{Kind: resolver.KindTimeout}, "4.4.3", true},
		{"refused", resolver.ErrTemporary, "4.4.3", true},
		{"unknown error", errors.New("boom"), "4.4.3", true},
		{"bad name", resolver.ErrBadName, "5.1.2", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &resolver.Mock{Errors: map[string]error{"MX x.test": tt.err}}
			cl := New(Options{Resolver: m})
			_, e := cl.route(context.Background(), "x.test")
			require.NotNil(t, e)
			assert.Equal(t, tt.enh, e.Reply.Enhanced.String())
			assert.Equal(t, tt.temp, e.Temporary())
			assert.Equal(t, CmdDNS, e.Command)
		})
	}
}

func TestShuffleEqual(t *testing.T) {
	base := []resolver.MX{{Host: "a", Pref: 10}, {Host: "b", Pref: 10}, {Host: "c", Pref: 20}, {Host: "d", Pref: 30}, {Host: "e", Pref: 30}, {Host: "f", Pref: 30}}
	firsts := map[string]int{}
	lasts := map[string]int{}
	for range 300 {
		mx := append([]resolver.MX(nil), base...)
		shuffleEqual(mx)
		// Preference order is kept.
		for i := 1; i < len(mx); i++ {
			require.LessOrEqual(t, mx[i-1].Pref, mx[i].Pref)
		}
		require.Equal(t, "c", mx[2].Host)
		firsts[mx[0].Host]++
		lasts[mx[5].Host]++
	}
	// Each host of an equal-preference group comes first sometimes: the
	// probability that one never does in 300 rounds is below 2^-170.
	assert.Len(t, firsts, 2)
	assert.Len(t, lasts, 3)
}

func TestRcptOptions(t *testing.T) {
	o := rcptOptions(mailblocks.Recipient{Address: "a@b", Notify: []mailblocks.DSNNotify{"SUCCESS", "DELAY"}, OriginalRecipient: "rfc822;x@y"})
	assert.Equal(t, []smtp.DSNNotify{"SUCCESS", "DELAY"}, o.Notify)
	assert.Equal(t, smtp.DSNAddressTypeRFC822, o.OriginalRecipientType)
	assert.Equal(t, "x@y", o.OriginalRecipient)

	o = rcptOptions(mailblocks.Recipient{Notify: []mailblocks.DSNNotify{"NEVER", "SUCCESS"}, OriginalRecipient: "utf-8;ü@y"})
	assert.Nil(t, o.Notify, "NEVER with another value is malformed (RFC 3461 4.1)")
	assert.Equal(t, smtp.DSNAddressTypeUTF8, o.OriginalRecipientType)

	o = rcptOptions(mailblocks.Recipient{Notify: []mailblocks.DSNNotify{"FAILURE", "FAILURE"}, OriginalRecipient: "rfc822;ü@y"})
	assert.Nil(t, o.Notify)
	assert.Empty(t, o.OriginalRecipient, "non-ASCII in an rfc822 ORCPT is dropped")

	o = rcptOptions(mailblocks.Recipient{OriginalRecipient: "x400;foo"})
	assert.Empty(t, o.OriginalRecipient)
}

func TestReplyError(t *testing.T) {
	e := replyError(550, "5.1.1 No such user\n5.1.1 really")
	assert.Equal(t, smtp.EnhancedCode{5, 1, 1}, e.EnhancedCode)
	assert.Equal(t, "No such user\nreally", e.Message)
	e = replyError(421, "Service not available")
	assert.Equal(t, smtp.EnhancedCode{}, e.EnhancedCode)
	assert.Equal(t, "Service not available", e.Message)
	e = replyError(451, "4.x.0 odd")
	assert.Equal(t, "4.x.0 odd", e.Message)
}

// FuzzReplyError: the reply parser must not panic and must keep the code.
func FuzzReplyError(f *testing.F) {
	f.Add(550, "5.1.1 No such user")
	f.Add(421, "")
	f.Add(250, "2.0.0")
	f.Add(451, "4.3.0 a\n4.3.0 b")
	f.Fuzz(func(t *testing.T, code int, msg string) {
		e := replyError(code, msg)
		if e.Code != code {
			t.Fatalf("code %d became %d", code, e.Code)
		}
		m := fromReply(e.Code, e.EnhancedCode, e.Message)
		if m.Temporary() == (m.Code >= 500) && m.Code >= 400 {
			t.Fatalf("inconsistent %v", m)
		}
		if int(m.Enhanced[0]) != m.Code/100 {
			t.Fatalf("enhanced class %v for code %d", m.Enhanced, m.Code)
		}
	})
}
