package smtpclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mailblocks/mailblocks"
)

// transact runs one mail transaction (RFC 5321 3.3) for the recipients idx
// of env on cn and fills out[i] for each of them. It reports whether the
// session is still usable for another transaction.
func (cl *Client) transact(ctx context.Context, cn *conn, env *mailblocks.Envelope, idx []int, body io.ReaderAt, size int64, out []mailblocks.DeliveryStatus) bool {
	t := cl.timeouts
	host := cn.host
	failAll := func(list []int, e *Error) {
		for _, i := range list {
			out[i].Err = e
			out[i].RemoteHost = host
		}
	}

	// Checks against the EHLO reply before MAIL: a refusal we can predict
	// is better given now, with a clear reason, than as a remote 5xx.
	if limit, ok := cn.c.MaxMessageSize(); ok && limit > 0 && size > int64(limit) {
		// RFC 1870 6: the client should not send a message larger than
		// the server's declared maximum.
		failAll(idx, newError(host, CmdLocal, mailblocks.ErrMessageTooBig.WithMessage(
			fmt.Sprintf("Message size %d exceeds the maximum of %d bytes of %s", size, limit, host))))
		return true
	}
	// RFC 6531 3.2: without SMTPUTF8 an address may still carry a U-label
	// domain when it is sent as A-labels (RFC 5890); a non-ASCII local
	// part or a message flagged SMTPUTF8 needs the extension.
	serverUTF8 := cn.ext("SMTPUTF8")
	from := wireAddress(env.From, serverUTF8)
	rcpts := make([]string, len(idx)) // parallel to idx
	utf8 := env.SMTPUTF8 || !mailblocks.IsASCII(from)
	for k, i := range idx {
		rcpts[k] = wireAddress(env.Recipients[i].Address, serverUTF8)
		utf8 = utf8 || !mailblocks.IsASCII(rcpts[k])
	}
	if utf8 && !serverUTF8 {
		// RFC 6531 3.4: without SMTPUTF8 at the server the message cannot
		// be delivered (we do not downgrade); permanent.
		failAll(idx, newError(host, CmdLocal, mailblocks.ErrNeedsSMTPUTF8.WithMessage(
			"Message needs SMTPUTF8 but "+host+" does not support it")))
		return true
	}
	if env.Body == mailblocks.BodyBinaryMIME {
		failAll(idx, newError(host, CmdLocal, errBinaryMIME))
		return true
	}
	// An 8BITMIME message to a server without 8BITMIME is sent anyway, as
	// Postfix does with disable_mime_output_conversion: nearly every server
	// accepts 8-bit data, and we cannot convert a streamed body to 7 bit
	// without rewriting its MIME structure. go-smtp adds BODY=8BITMIME
	// whenever the server advertises it (RFC 6152 allows it for 7-bit
	// content too).

	// The context ends the session at once: close the socket so that any
	// pending read or write returns.
	stop := context.AfterFunc(ctx, func() { cn.raw.Close() })
	defer stop()
	cn.msgs++

	mo := &smtp.MailOptions{
		Size:       size,
		RequireTLS: env.RequireTLS,
		UTF8:       utf8,
		Return:     smtp.DSNReturn(env.Return),
		EnvelopeID: env.EnvelopeID,
	}
	if mo.Return != smtp.DSNReturnFull && mo.Return != smtp.DSNReturnHeaders {
		mo.Return = ""
	}
	if !isPrintableASCII(mo.EnvelopeID) {
		mo.EnvelopeID = "" // RFC 3461 4.4: ENVID is xtext of printable ASCII
	}
	cn.c.CommandTimeout = t.Mail
	if err := cn.c.Mail(from, mo); err != nil {
		e := classify(host, "MAIL FROM", withCtx(ctx, err))
		failAll(idx, e)
		return e.Remote && e.Reply.Code != 421 && cl.reset(cn) == nil
	}

	dsn := cn.ext("DSN")
	var accepted []int
	for k, i := range idx {
		r := env.Recipients[i]
		cn.c.CommandTimeout = t.Rcpt
		err := cn.c.Rcpt(rcpts[k], rcptOptions(r))
		if err == nil {
			accepted = append(accepted, i)
			continue
		}
		e := classify(host, "RCPT TO", withCtx(ctx, err))
		out[i].Err, out[i].RemoteHost = e, host
		if !e.Remote || e.Reply.Code == 421 {
			// The session is gone (RFC 5321 3.8: 421 closes it): every
			// recipient not yet answered fails the same way, and the
			// accepted ones were never sent the message.
			failAll(idx[k+1:], e)
			failAll(accepted, e)
			return false
		}
	}
	if len(accepted) == 0 {
		return cl.reset(cn) == nil
	}

	cn.c.CommandTimeout = t.DataInit
	w, err := cn.c.Data()
	if err != nil {
		e := classify(host, "DATA", withCtx(ctx, err))
		failAll(accepted, e)
		return e.Remote && e.Reply.Code != 421 && cl.reset(cn) == nil
	}
	cn.c.SubmissionTimeout = t.DataTermination
	src := &readTracker{r: io.NewSectionReader(body, 0, size)}
	_, err = io.Copy(&blockWriter{w: w, conn: cn.wire, timeout: t.DataBlock}, src)
	if src.err != nil {
		// The message cannot be read: never send the final "." after a
		// truncated body. Dropping the connection aborts the transaction
		// (RFC 5321 3.8).
		failAll(accepted, newError(host, CmdBody, mailblocks.ErrTemporary.Wrap(fmt.Errorf("smtpclient: reading message: %w", src.err))))
		return false
	}
	if err != nil {
		failAll(accepted, classify(host, CmdBody, withCtx(ctx, err)))
		return false
	}
	if _, err := w.CloseWithResponse(); err != nil {
		e := classify(host, CmdEndOfData, withCtx(ctx, err))
		failAll(accepted, e)
		return e.Remote && e.Reply.Code != 421
	}
	for _, i := range accepted {
		out[i].Err = nil
		out[i].RemoteHost = host
		// RFC 3461 5.2.2: a DSN-capable next hop takes over the duty to
		// send success notices.
		out[i].RemoteDSN = dsn
	}
	return true
}

// wireAddress returns addr as it goes into MAIL or RCPT: unchanged for an
// SMTPUTF8 server or an ASCII address, else with its domain as A-labels
// when that makes it ASCII.
func wireAddress(addr string, serverUTF8 bool) string {
	if serverUTF8 || mailblocks.IsASCII(addr) {
		return addr
	}
	local, domain, err := mailblocks.SplitAddress(addr)
	if err != nil || !mailblocks.IsASCII(local) {
		return addr
	}
	d, err := mailblocks.NormalizeDomain(domain)
	if err != nil {
		return addr
	}
	return local + "@" + d
}

// rcptOptions maps the envelope's DSN parameters (RFC 3461 4.1, 4.2) onto
// go-smtp's; go-smtp sends them only when the server advertises DSN.
// Malformed values are dropped rather than failing the recipient.
func rcptOptions(r mailblocks.Recipient) *smtp.RcptOptions {
	o := &smtp.RcptOptions{}
	if len(r.Notify) > 0 && validNotify(r.Notify) {
		for _, n := range r.Notify {
			o.Notify = append(o.Notify, smtp.DSNNotify(n))
		}
	}
	if typ, addr, ok := strings.Cut(r.OriginalRecipient, ";"); ok && addr != "" {
		switch {
		case strings.EqualFold(typ, "rfc822") && isPrintableASCII(addr):
			o.OriginalRecipientType, o.OriginalRecipient = smtp.DSNAddressTypeRFC822, addr
		case strings.EqualFold(typ, "utf-8"):
			o.OriginalRecipientType, o.OriginalRecipient = smtp.DSNAddressTypeUTF8, addr
		}
	}
	return o
}

// validNotify applies RFC 3461 4.1: NEVER alone, or any of SUCCESS,
// FAILURE, DELAY without repetition.
func validNotify(list []mailblocks.DSNNotify) bool {
	seen := map[mailblocks.DSNNotify]bool{}
	for _, n := range list {
		switch n {
		case mailblocks.NotifyNever, mailblocks.NotifySuccess, mailblocks.NotifyFailure, mailblocks.NotifyDelay:
		default:
			return false
		}
		if seen[n] {
			return false
		}
		seen[n] = true
	}
	return !seen[mailblocks.NotifyNever] || len(list) == 1
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// readTracker remembers a read error of the message so that it is not
// mistaken for a network failure.
type readTracker struct {
	r   io.Reader
	err error
}

func (t *readTracker) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		t.err = err
	}
	return n, err
}

// blockWriter applies the data block timeout of RFC 5321 4.5.3.2.5 to every
// write of the message content.
type blockWriter struct {
	w       io.Writer
	conn    interface{ SetWriteDeadline(time.Time) error }
	timeout time.Duration
}

func (b *blockWriter) Write(p []byte) (int, error) {
	_ = b.conn.SetWriteDeadline(time.Now().Add(b.timeout))
	return b.w.Write(p)
}
