package smtpclient

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mailblocks/mailblocks"
	"github.com/mailblocks/mailblocks/resolver"
)

// maxRcptsPerTransaction: RFC 5321 4.5.3.1.8 obliges servers to accept
// at least 100 recipients per transaction; larger groups are split.
const maxRcptsPerTransaction = 100

// Client delivers messages to other mail systems over SMTP. It is safe for
// concurrent use; idle connections are shared between deliveries.
type Client struct {
	opts     Options
	hostname string
	dialer   Dialer
	timeouts Timeouts
	log      *slog.Logger
	pool     *pool
	dials    atomic.Int64
}

// The queue's Deliverer, declared there (layer rule: no import).
var _ interface {
	Deliver(ctx context.Context, env *mailblocks.Envelope, body io.ReaderAt, size int64) []mailblocks.DeliveryStatus
} = (*Client)(nil)

// New returns a Client configured by opts (see Options for the defaults).
func New(opts Options) *Client {
	cl := &Client{opts: opts, timeouts: opts.Timeouts.withDefaults()}
	cl.hostname = opts.Hostname
	if cl.hostname == "" {
		if h, err := os.Hostname(); err == nil && h != "" {
			cl.hostname = h
		} else {
			cl.hostname = "localhost"
		}
	}
	cl.dialer = opts.Dialer
	if cl.dialer == nil {
		cl.dialer = &net.Dialer{}
	}
	cl.log = opts.Logger
	if cl.log == nil {
		cl.log = slog.New(slog.DiscardHandler)
	}
	if cl.opts.Resolver == nil && opts.Smarthost == "" {
		cl.opts.Resolver = resolver.New(resolver.Options{Logger: opts.Logger})
	}
	if cl.opts.Port == 0 {
		cl.opts.Port = 25
	}
	if cl.opts.MaxHosts <= 0 {
		cl.opts.MaxHosts = 5
	}
	if cl.opts.MaxAddresses <= 0 {
		cl.opts.MaxAddresses = 2
	}
	p := &pool{idle: map[string][]*conn{}, maxIdle: opts.MaxIdlePerHost, timeout: opts.IdleTimeout, maxMsgs: opts.MaxMessagesPerConn}
	if p.maxIdle <= 0 {
		p.maxIdle = 2
	}
	if p.timeout <= 0 {
		p.timeout = 5 * time.Second
	}
	if p.maxMsgs <= 0 {
		p.maxMsgs = 100
	}
	cl.pool = p
	return cl
}

// Close closes the idle connections (with QUIT). Deliveries in progress
// finish; their connections are closed instead of being kept.
func (cl *Client) Close() error {
	cl.pool.close()
	return nil
}

// Dials returns the number of connections the client has opened, for
// statistics.
func (cl *Client) Dials() int64 { return cl.dials.Load() }

// Deliver sends the message (body, size bytes, in its final form with CRLF
// line endings) to every recipient of env and returns one DeliveryStatus
// per recipient, in the order of env.Recipients. Recipients are grouped by
// domain (all together through a smarthost); each group goes to the
// domain's MX hosts in one transaction per 100 recipients.
//
// Deliver never returns a partial answer: a recipient that could not be
// tried gets a temporary error. It satisfies the queue's Deliverer.
func (cl *Client) Deliver(ctx context.Context, env *mailblocks.Envelope, body io.ReaderAt, size int64) []mailblocks.DeliveryStatus {
	out := make([]mailblocks.DeliveryStatus, len(env.Recipients))
	type group struct {
		domain string
		idx    []int
	}
	var groups []*group
	byDomain := map[string]*group{}
	for i, r := range env.Recipients {
		out[i].Recipient = r.Address
		if strings.ContainsAny(r.Address, "\r\n<>") {
			out[i].Err = newError("", CmdLocal, mailblocks.ErrBadDestinationSyntax)
			continue
		}
		d := ""
		if cl.opts.Smarthost == "" {
			// Group and look up by the canonical domain: lower case,
			// A-labels (RFC 5890), canonical address literals.
			_, dom, err := mailblocks.SplitAddress(r.Address)
			if err == nil {
				d, err = mailblocks.NormalizeDomain(dom)
			}
			if err != nil {
				out[i].Err = newError("", CmdLocal, mailblocks.ErrBadDestinationSyntax.Wrap(err))
				continue
			}
		}
		g := byDomain[d]
		if g == nil {
			g = &group{domain: d}
			byDomain[d] = g
			groups = append(groups, g)
		}
		g.idx = append(g.idx, i)
	}
	if strings.ContainsAny(env.From, "\r\n<>") {
		for i := range out {
			out[i].Err = newError("", CmdLocal, mailblocks.ErrBadSenderSyntax)
		}
		return out
	}
	for _, g := range groups {
		for len(g.idx) > 0 {
			n := min(len(g.idx), maxRcptsPerTransaction)
			cl.deliverDomain(ctx, g.domain, env, g.idx[:n], body, size, out)
			g.idx = g.idx[n:]
		}
	}
	return out
}

// deliverDomain delivers to the recipients idx, all of domain (or all of
// the envelope for a smarthost), trying the destination's hosts in order
// until one of them takes the transaction.
func (cl *Client) deliverDomain(ctx context.Context, domain string, env *mailblocks.Envelope, idx []int, body io.ReaderAt, size int64, out []mailblocks.DeliveryStatus) {
	log := cl.log.With("msgid", env.ID, "domain", domain)
	setAll := func(e *Error) {
		for _, i := range idx {
			out[i].Err = e
			// DeliveryStatus.RemoteHost names a host that answered.
			if e.Command != CmdConnect && e.Command != CmdDNS {
				out[i].RemoteHost = e.RemoteHost
			}
		}
		log.Info("delivery failed", "err", e)
	}
	hosts, err := cl.route(ctx, domain)
	if err != nil {
		setAll(err)
		return
	}
	mode, auth := tlsTry, false
	if cl.opts.Smarthost != "" {
		auth = cl.opts.Auth != nil
		switch cl.opts.SmarthostTLS {
		case SmarthostImplicitTLS:
			mode = tlsImplicit
		case SmarthostNoTLS:
			mode = tlsOff
		default:
			mode = tlsMust
		}
	} else {
		p := TLSOpportunistic
		if cl.opts.Policy != nil {
			p = cl.opts.Policy(domain)
		}
		switch {
		case p == TLSVerify || env.RequireTLS:
			mode = tlsMust
		case p == TLSNone:
			mode = tlsOff
		}
	}

	var errs []*Error
	for _, h := range hosts {
		cn, herrs := cl.connect(ctx, h, mode, auth, env.RequireTLS)
		for _, e := range herrs {
			if env.RequireTLS && e.Reply.Is(errTLSRequired) {
				// RFC 8689 4.2.1: no verified TLS to this host; the
				// message must not go there in clear text.
				e = &Error{Reply: errRequireTLS.WithMessage("REQUIRETLS: " + e.Reply.Message).Wrap(e.Reply.Err), Command: e.Command, RemoteHost: e.RemoteHost}
			}
			errs = append(errs, e)
		}
		if cn == nil {
			continue
		}
		if env.RequireTLS {
			if e := requireTLSErr(cn); e != nil {
				cl.pool.put(cn)
				errs = append(errs, e)
				continue
			}
		}
		log.Debug("transaction", "host", cn.host, "addr", cn.addr, "tls", cn.tls, "verified", cn.verified, "reused", cn.msgs > 0)
		if cl.transact(ctx, cn, env, idx, body, size, out) {
			cl.pool.put(cn)
		} else {
			cn.raw.Close()
		}
		for _, i := range idx {
			if out[i].Err != nil {
				log.Info("recipient failed", "rcpt", out[i].Recipient, "err", out[i].Err)
			} else {
				log.Info("delivered", "rcpt", out[i].Recipient, "host", cn.host)
			}
		}
		return
	}
	e := combine(errs)
	if e == nil {
		e = newError("", CmdConnect, errNoRoute)
	}
	setAll(e)
}

// connect returns a session to host h: an idle pooled one that answers
// RSET, or a new one through h's addresses in turn. On failure it returns
// the errors of every attempt.
func (cl *Client) connect(ctx context.Context, h target, mode tlsMode, auth, requireTLS bool) (*conn, []*Error) {
	key := h.key(mode, auth)
	for {
		cn := cl.pool.get(key, func(cn *conn) bool {
			return !requireTLS || (cn.tls && cn.verified)
		})
		if cn == nil {
			break
		}
		if err := cl.reset(cn); err == nil {
			return cn, nil
		}
		cn.raw.Close()
	}
	addrs, err := cl.addresses(ctx, h)
	if err != nil {
		return nil, []*Error{err}
	}
	var errs []*Error
	for _, addr := range addrs {
		if ctx.Err() != nil {
			errs = append(errs, classify(h.name, CmdConnect, ctx.Err()))
			break
		}
		cl.dials.Add(1)
		cn, err := cl.open(ctx, h.name, addr, mode, auth)
		if errors.Is(err, errTLSFallback) {
			cl.dials.Add(1)
			cn, err = cl.open(ctx, h.name, addr, tlsOff, auth)
		}
		if err == nil {
			cn.key = key
			cl.log.Info("connected", "host", h.name, "addr", addr, "tls", cn.tls, "verified", cn.verified)
			return cn, nil
		}
		e := classify(h.name, CmdConnect, err)
		cl.log.Info("host failed", "host", h.name, "addr", addr, "err", e)
		errs = append(errs, e)
	}
	return nil, errs
}
