package smtpclient

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// tlsMode is how one connection attempt uses TLS.
type tlsMode int

const (
	tlsOff      tlsMode = iota // clear text
	tlsTry                     // STARTTLS if offered, certificate not enforced
	tlsMust                    // STARTTLS with a verified certificate
	tlsImplicit                // TLS from the first byte, verified
)

// errTLSFallback tells the caller that an opportunistic STARTTLS failed and
// the same address should be tried again in clear text.
var errTLSFallback = errors.New("smtpclient: STARTTLS failed")

// conn is one SMTP session, ready for a transaction (greeted, EHLO done,
// TLS and AUTH as required).
type conn struct {
	host     string   // host name used for TLS verification and reports
	addr     string   // ip:port (or host:port for a smarthost)
	key      string   // pool key
	raw      net.Conn // the TCP connection
	wire     net.Conn // what go-smtp talks through (raw or TLS)
	c        *smtp.Client
	tls      bool // TLS is active
	verified bool // the certificate verified for host
	msgs     int  // transactions started on this connection
	idle     *time.Timer
}

// trackConn counts the bytes written, to tell a failed greeting (nothing
// sent yet) from a failed EHLO when go-smtp's Hello returns an error.
type trackConn struct {
	net.Conn
	written int64
}

func (t *trackConn) Write(p []byte) (int, error) {
	n, err := t.Conn.Write(p)
	t.written += int64(n)
	return n, err
}

// maxReplyBytes bounds what the server may send between two of our
// writes: one reply, or the TLS handshake's flight. go-smtp (through
// net/textproto) reads a reply, however many continuation lines it has,
// and a line, however long, into memory; a hostile MX streaming "220-"
// lines would otherwise be read until the greeting timeout (5 minutes).
// Real replies are a few hundred octets (RFC 5321 4.5.3.1.5: 512 per
// line), EHLO replies a few kilobytes, certificate chains tens of them.
const maxReplyBytes = 1 << 20

// errReplyTooLong ends a session whose server sent more than
// maxReplyBytes without being asked anything.
var errReplyTooLong = errors.New("smtpclient: reply too long")

// replyLimitConn fails reads once more than maxReplyBytes arrived since
// the last write. It wraps the TCP connection, beneath TLS.
type replyLimitConn struct {
	net.Conn
	read atomic.Int64 // since the last write
}

func (c *replyLimitConn) Read(p []byte) (int, error) {
	left := maxReplyBytes - c.read.Load()
	if left <= 0 {
		return 0, errReplyTooLong
	}
	if int64(len(p)) > left {
		p = p[:left]
	}
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
}

func (c *replyLimitConn) Write(p []byte) (int, error) {
	c.read.Store(0)
	return c.Conn.Write(p)
}

// replayConn hands go-smtp a synthetic greeting: after STARTTLS (RFC 3207
// 4.2) there is no new 220, but go-smtp's Client insists on reading one.
type replayConn struct {
	net.Conn
	prefix *strings.Reader
}

func (r *replayConn) Read(p []byte) (int, error) {
	if r.prefix.Len() > 0 {
		return r.prefix.Read(p)
	}
	return r.Conn.Read(p)
}

// ext reports whether the server advertised an EHLO keyword.
func (c *conn) ext(name string) bool {
	ok, _ := c.c.Extension(name)
	return ok
}

// close ends the session politely (QUIT with a short deadline) and closes
// the connection.
func (c *conn) close() {
	if c.c != nil {
		c.c.CommandTimeout = 5 * time.Second
		_ = c.c.Quit()
	}
	_ = c.raw.Close()
}

// rawCmd sends a command that go-smtp's Client cannot send the way we need
// (STARTTLS with our own EHLO name, RSET without a new EHLO) and reads its
// reply. It is only used when go-smtp's reader holds no pending input: the
// server has answered everything and speaks only when spoken to.
func rawCmd(w net.Conn, cmd string, expect int, timeout time.Duration) error {
	_ = w.SetDeadline(time.Now().Add(timeout))
	defer w.SetDeadline(time.Time{})
	if _, err := w.Write([]byte(cmd + "\r\n")); err != nil {
		return err
	}
	// A reader of one byte at a time would be safest; a bufio.Reader is
	// fine because nothing follows the reply until we speak again.
	code, msg, err := textproto.NewReader(bufio.NewReaderSize(w, 512)).ReadResponse(expect)
	var te *textproto.Error
	if errors.As(err, &te) {
		return replyError(code, msg)
	}
	return err
}

// replyError builds an *smtp.SMTPError from a raw reply, parsing the RFC
// 2034 enhanced code.
func replyError(code int, msg string) *smtp.SMTPError {
	se := &smtp.SMTPError{Code: code, Message: msg}
	first, rest, ok := strings.Cut(msg, " ")
	if !ok {
		return se
	}
	parts := strings.Split(first, ".")
	if len(parts) != 3 {
		return se
	}
	var enh smtp.EnhancedCode
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil {
			return se
		}
		enh[i] = n
	}
	se.EnhancedCode = enh
	se.Message = strings.ReplaceAll(rest, "\n"+first+" ", "\n")
	return se
}

// tlsConfig returns the configuration for host. Verification is done in
// VerifyConnection so that an opportunistic session records whether the
// certificate verified without failing when it does not.
func (cl *Client) tlsConfig(host string, enforce bool, verified *bool) *tls.Config {
	var cfg *tls.Config
	if cl.opts.TLSConfig != nil {
		cfg = cl.opts.TLSConfig.Clone()
	} else {
		cfg = &tls.Config{}
	}
	name := strings.Trim(host, "[]")
	name = strings.TrimPrefix(name, "IPv6:")
	cfg.ServerName = name
	roots := cfg.RootCAs
	cfg.InsecureSkipVerify = true
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		err := verifyChain(cs, name, roots)
		*verified = err == nil
		if enforce {
			return err
		}
		return nil
	}
	return cfg
}

// verifyChain checks the peer's certificate chain and name as crypto/tls
// would without InsecureSkipVerify.
func verifyChain(cs tls.ConnectionState, name string, roots *x509.CertPool) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("smtpclient: no peer certificate")
	}
	opts := x509.VerifyOptions{
		Roots:         roots,
		DNSName:       name,
		Intermediates: x509.NewCertPool(),
	}
	for _, c := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(opts)
	return err
}

// open connects to addr and brings the session to the point where MAIL can
// be sent: greeting, EHLO, STARTTLS and EHLO again, AUTH. A failure is
// returned as *Error naming the step; errTLSFallback asks for a clear-text
// retry.
func (cl *Client) open(ctx context.Context, host, addr string, mode tlsMode, auth bool) (*conn, error) {
	t := cl.timeouts
	dctx, cancel := context.WithTimeout(ctx, t.Connect)
	defer cancel()
	raw, err := cl.dialer.DialContext(dctx, "tcp", addr)
	if err != nil {
		return nil, classify(host, CmdConnect, withCtx(ctx, err))
	}
	raw = &replyLimitConn{Conn: raw}
	// A cancelled context ends the session at once, whatever step it is
	// in: closing the socket makes the pending read or write fail.
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()
	fail := func(e *Error) (*conn, error) {
		raw.Close()
		return nil, e
	}

	cn := &conn{host: host, addr: addr, raw: raw, wire: raw}
	if mode == tlsImplicit {
		tc := tls.Client(raw, cl.tlsConfig(host, true, &cn.verified))
		if err := tc.HandshakeContext(dctx); err != nil {
			return fail(newError(host, CmdConnect, errTLSRequired.WithMessage("TLS handshake failed").Wrap(err)))
		}
		cn.wire, cn.tls = tc, true
	}

	tc := &trackConn{Conn: cn.wire}
	cn.c = smtp.NewClient(tc)
	cn.c.CommandTimeout = t.Greeting
	if err := cn.c.Hello(cl.hostname); err != nil {
		cmd := "EHLO"
		if tc.written == 0 {
			cmd = CmdGreeting
		}
		return fail(classify(host, cmd, withCtx(ctx, err)))
	}

	if mode == tlsTry || mode == tlsMust {
		if !cn.ext("STARTTLS") {
			if mode == tlsMust {
				cn.close()
				return nil, newError(host, "EHLO", errTLSRequired.WithMessage("TLS is required, but was not offered by host "+host))
			}
		} else {
			if err := cl.startTLS(ctx, cn, mode == tlsMust); err != nil {
				raw.Close()
				if mode == tlsTry {
					cl.log.Info("STARTTLS failed, retrying in clear text", "host", host, "addr", addr, "err", err)
					return nil, errTLSFallback
				}
				return nil, err
			}
		}
	}

	if auth {
		if err := cl.auth(cn); err != nil {
			cn.close()
			return nil, err
		}
	}
	return cn, nil
}

// startTLS runs STARTTLS (RFC 3207) and the new EHLO over TLS.
func (cl *Client) startTLS(ctx context.Context, cn *conn, enforce bool) error {
	t := cl.timeouts
	if err := rawCmd(cn.wire, "STARTTLS", 220, t.Greeting); err != nil {
		e := classify(cn.host, "STARTTLS", withCtx(ctx, err))
		if e.Remote {
			// RFC 3207 4: a refused STARTTLS leaves the session usable,
			// but our policy wanted TLS.
			e = newError(cn.host, "STARTTLS", errTLSRequired.WithMessage("STARTTLS refused: "+e.Reply.Error()))
		}
		return e
	}
	tc := tls.Client(cn.wire, cl.tlsConfig(cn.host, enforce, &cn.verified))
	hctx, cancel := context.WithTimeout(ctx, t.Greeting)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		return newError(cn.host, "STARTTLS", errTLSRequired.WithMessage("TLS handshake failed").Wrap(err))
	}
	// RFC 3207 4.2: the client MUST discard what it knew and send EHLO
	// again.
	cn.wire, cn.tls = tc, true
	cn.c = smtp.NewClient(&replayConn{Conn: tc, prefix: strings.NewReader("220 TLS established\r\n")})
	cn.c.CommandTimeout = t.Greeting
	if err := cn.c.Hello(cl.hostname); err != nil {
		return classify(cn.host, "EHLO", withCtx(ctx, err))
	}
	return nil
}

// auth authenticates to the smarthost (RFC 4954). Authentication failures
// are temporary, as with Postfix's smtp_sasl_auth_soft_bounce: a wrong
// password is a local configuration problem and must not bounce the mail.
func (cl *Client) auth(cn *conn) error {
	a := cl.opts.Auth
	if !cn.tls {
		return newError(cn.host, "AUTH", errAuthLocal.WithMessage("Refusing to send credentials without TLS"))
	}
	mech := strings.ToUpper(a.Mechanism)
	if mech == "" {
		mech = sasl.Plain
		if !cn.c.SupportsAuth(sasl.Plain) && cn.c.SupportsAuth(sasl.Login) {
			mech = sasl.Login
		}
	}
	if !cn.c.SupportsAuth(mech) {
		return newError(cn.host, "AUTH", errAuthLocal.WithMessage(fmt.Sprintf("Relay does not offer AUTH %s", mech)))
	}
	var sc sasl.Client
	switch mech {
	case sasl.Plain:
		sc = sasl.NewPlainClient(a.Identity, a.Username, a.Password)
	case sasl.Login:
		sc = sasl.NewLoginClient(a.Username, a.Password)
	default:
		return newError(cn.host, "AUTH", errAuthLocal.WithMessage("Unsupported mechanism "+mech))
	}
	cn.c.CommandTimeout = cl.timeouts.Greeting
	if err := cn.c.Auth(sc); err != nil {
		e := classify(cn.host, "AUTH", err)
		if !e.Temporary() {
			r := *e.Reply
			r.Code -= 100
			r.Enhanced[0] = 4
			e = &Error{Reply: &r, Command: e.Command, RemoteHost: e.RemoteHost, Remote: true}
		}
		return e
	}
	return nil
}

// reset prepares a pooled session for a new transaction, or ends an
// aborted one: RSET verifies that the server is still there and clears any
// state (RFC 5321 4.1.1.5), as Postfix does before reusing a cached
// session. An error means the session is no longer usable.
func (cl *Client) reset(cn *conn) error {
	return rawCmd(cn.wire, "RSET", 250, cl.timeouts.Mail)
}

// requireTLSErr is the error for an RFC 8689 envelope that host cannot
// carry, or nil.
func requireTLSErr(cn *conn) *Error {
	switch {
	case !cn.tls:
		return newError(cn.host, "STARTTLS", errRequireTLS.WithMessage("REQUIRETLS: host "+cn.host+" offers no TLS"))
	case !cn.verified:
		return newError(cn.host, "STARTTLS", errRequireTLS.WithMessage("REQUIRETLS: certificate of "+cn.host+" does not verify"))
	case !cn.ext("REQUIRETLS"):
		return newError(cn.host, "EHLO", errRequireTLS.WithMessage("REQUIRETLS: host "+cn.host+" does not support REQUIRETLS"))
	}
	return nil
}
