package smtpserver

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/mailblocks/mailblocks"
	"github.com/mailblocks/mailblocks/store"
)

// session is the go-smtp Session of one connection between two
// EHLO/STARTTLS resets.
type session struct {
	c        *conn
	sc       *smtp.Conn
	helo     string
	authUser string

	// env is the current transaction, nil outside one. With BDAT, go-smtp
	// runs Data in its own goroutine while RSET may call Reset: hence mu.
	mu  sync.Mutex
	env *mailblocks.Envelope
}

func (s *session) getEnv() *mailblocks.Envelope {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.env
}

func (s *session) setEnv(env *mailblocks.Envelope) {
	s.mu.Lock()
	s.env = env
	s.mu.Unlock()
}

var (
	_ smtp.Session     = (*session)(nil)
	_ smtp.AuthSession = (*session)(nil)
	_ smtp.LMTPSession = (*session)(nil)
)

func (c *conn) newSession(sc *smtp.Conn) (smtp.Session, error) {
	return &session{c: c, sc: sc, helo: sc.Hostname()}, nil
}

func (s *session) cfg() *config { return s.c.srv.cfg }

// Reset ends the transaction (RSET, EHLO, end of DATA).
func (s *session) Reset() {
	s.setEnv(nil)
	s.c.endData()
}

// Logout is called when the session ends.
func (s *session) Logout() error {
	s.setEnv(nil)
	return nil
}

// smtpErr turns err into the reply sent to the client, counts it towards
// MaxErrors, logs it and emits an event. A reply with code 421 closes the
// connection after it is written (RFC 5321 3.8).
func (c *conn) smtpErr(stage string, err error, env ...*mailblocks.Envelope) *smtp.SMTPError {
	var e *mailblocks.Envelope
	if len(env) > 0 {
		e = env[0]
	}
	return c.reply(stage, "", err, e, true)
}

// reply is smtpErr naming the checker that refused (found in a
// checkerError when empty); count is false for the per-recipient statuses of
// LMTP, which must all be written: they neither count towards MaxErrors
// nor close the connection.
func (c *conn) reply(stage, checker string, err error, env *mailblocks.Envelope, count bool) *smtp.SMTPError {
	var ce checkerError
	if checker == "" && errors.As(err, &ce) {
		checker = ce.name
	}
	var me *mailblocks.Error
	if !errors.As(err, &me) {
		c.log.Error("internal error", "stage", stage, "checker", checker, "err", err)
		me = mailblocks.ErrTemporary
	}
	cfg := c.srv.cfg
	if count {
		if n := c.errors.Add(1); cfg.MaxErrors > 0 && int(n) >= cfg.MaxErrors && me.Code != 421 {
			c.log.Info("too many errors", "stage", stage, "code", me.Code)
			me = ErrTooManyErrors
		}
		if me.Code == 421 || me == errLineTooLong {
			c.closeAfterWrite.Store(true)
		}
	}
	ev := Event{Kind: EventReject, Session: c.id, Mode: c.mode, RemoteAddr: c.RemoteAddr(), Stage: stage,
		Code: me.Code, Enhanced: me.Enhanced, Checker: checker, Envelope: env}
	attrs := []any{"stage", stage, "code", me.Code, "enhanced", me.Enhanced.String(), "reason", me.Message}
	if checker != "" {
		attrs = append(attrs, "checker", checker)
	}
	if env != nil {
		attrs = append(attrs, "id", env.ID)
	}
	c.log.Info("rejected", attrs...)
	c.srv.event(ev)
	return toSMTP(me)
}

func toSMTP(me *mailblocks.Error) *smtp.SMTPError {
	return &smtp.SMTPError{Code: me.Code, EnhancedCode: smtp.EnhancedCode(me.Enhanced), Message: me.Message}
}

// trustedClient reports whether the client may relay.
func (s *session) trustedClient() bool { return s.authUser != "" || s.c.trusted }

var errNestedMail = &mailblocks.Error{Code: 503, Enhanced: mailblocks.EnhancedCode{5, 5, 1}, Message: "Nested MAIL command"}

var errNeedUTF8 = &mailblocks.Error{Code: 553, Enhanced: mailblocks.EnhancedCode{5, 6, 7}, Message: "Non-ASCII address needs the SMTPUTF8 parameter"}

// Mail starts a transaction.
func (s *session) Mail(from string, opts *smtp.MailOptions) error {
	if s.getEnv() != nil {
		// RFC 5321 4.1.4: MAIL inside a transaction is out of sequence.
		// go-smtp would let it through and keep the earlier recipients,
		// which would then get an LMTP status for a message they never get.
		return s.c.smtpErr("mail", errNestedMail)
	}
	env := &mailblocks.Envelope{
		ID:         newID(),
		From:       from,
		RemoteAddr: s.c.RemoteAddr(),
		Helo:       s.helo,
		AuthUser:   s.authUser,
		TLS:        tlsState(s.sc.Conn()),
		Size:       opts.Size,
		Body:       mailblocks.BodyType(opts.Body),
		SMTPUTF8:   opts.UTF8,
		RequireTLS: opts.RequireTLS,
		Return:     mailblocks.DSNReturn(opts.Return),
		EnvelopeID: opts.EnvelopeID,
	}
	if err := s.mail(env); err != nil {
		return s.c.smtpErr("mail", err, env)
	}
	s.setEnv(env)
	return nil
}

func (s *session) mail(env *mailblocks.Envelope) error {
	cfg := s.cfg()
	ctx := s.c.ctx
	if s.c.mode.submission() && s.authUser == "" {
		return mailblocks.ErrAuthRequired
	}
	if env.RequireTLS && env.TLS == nil {
		return ErrRequireTLSPlaintext
	}
	// RFC 6531 3.4: a non-ASCII address needs SMTPUTF8.
	if !env.SMTPUTF8 && !mailblocks.IsASCII(env.From) {
		return errNeedUTF8
	}
	if env.From != "" {
		if _, _, err := mailblocks.SplitAddress(env.From); err != nil {
			return mailblocks.ErrBadSenderSyntax
		}
	}
	if s.c.ip.IsValid() && !s.c.trusted && !s.c.srv.limiter.message(s.c.ip, cfg.Now(), cfg.MaxMessagesPerMinute) {
		return mailblocks.ErrRateLimited
	}
	if s.authUser != "" {
		if err := s.checkSender(ctx, env.From); err != nil {
			return err
		}
	}
	for _, ck := range cfg.Checkers {
		if mc, ok := ck.(MailChecker); ok {
			if err := mc.CheckMail(ctx, env); err != nil {
				return checkerError{ck.Name(), err}
			}
		}
	}
	return nil
}

// checkerError remembers which checker refused.
type checkerError struct {
	name string
	err  error
}

func (e checkerError) Error() string { return e.name + ": " + e.err.Error() }
func (e checkerError) Unwrap() error { return e.err }

// checkSender applies SenderPolicy (RFC 6409 4.3).
func (s *session) checkSender(ctx context.Context, from string) error {
	cfg := s.cfg()
	user := s.authUser
	if from == "" || cfg.SenderPolicy == SenderAny || strings.EqualFold(from, user) {
		return nil
	}
	switch cfg.SenderPolicy {
	case SenderSameDomain:
		if d := mailblocks.DomainOf(from); d != "" && d == mailblocks.DomainOf(user) {
			return nil
		}
	case SenderOwned:
		if cfg.Directory != nil {
			lk, err := cfg.Directory.LookupRecipient(ctx, from)
			if err != nil {
				return err
			}
			if lk.Kind == store.LookupLocal {
				for _, u := range lk.Users {
					if strings.EqualFold(u, user) {
						return nil
					}
				}
			}
		}
	}
	return ErrSenderNotOwned
}

// Rcpt adds a recipient.
func (s *session) Rcpt(to string, opts *smtp.RcptOptions) error {
	env := s.getEnv()
	if env == nil { // go-smtp checks MAIL first; be safe anyway
		return toSMTP(&mailblocks.Error{Code: 503, Enhanced: mailblocks.EnhancedCode{5, 5, 1}, Message: "MAIL first"})
	}
	r := mailblocks.Recipient{Address: to}
	for _, n := range opts.Notify {
		r.Notify = append(r.Notify, mailblocks.DSNNotify(n))
	}
	if opts.OriginalRecipientType != "" {
		r.OriginalRecipient = string(opts.OriginalRecipientType) + ";" + opts.OriginalRecipient
	}
	if err := s.rcpt(env, r); err != nil {
		return s.c.smtpErr("rcpt", err, env)
	}
	env.Recipients = append(env.Recipients, r)
	return nil
}

func (s *session) rcpt(env *mailblocks.Envelope, r mailblocks.Recipient) error {
	cfg := s.cfg()
	ctx := s.c.ctx
	if !env.SMTPUTF8 && !mailblocks.IsASCII(r.Address) {
		return errNeedUTF8
	}
	local, _, err := mailblocks.SplitAddress(r.Address)
	if err != nil {
		return mailblocks.ErrBadDestinationSyntax
	}
	// RFC 5321 3.6.1 and Postfix allow_untrusted_routing=no: go-smtp drops
	// source routes (@ours:user@remote becomes user@remote and meets the
	// relay check below) and unquotes local parts ("user@remote"@ours
	// becomes user@remote@ours), so a local part with @, % or ! is a
	// routing attempt.
	if !s.trustedClient() && strings.ContainsAny(local, "@%!") {
		return ErrRoutingNotAllowed
	}
	lk := store.Lookup{Kind: store.LookupNotOurDomain}
	if cfg.Directory != nil {
		lk, err = cfg.Directory.LookupRecipient(ctx, r.Address)
		if err != nil {
			return err
		}
	}
	switch lk.Kind {
	case store.LookupNotOurDomain:
		if s.c.mode == LMTP {
			return ErrLMTPNotLocal
		}
		if !s.trustedClient() {
			return mailblocks.ErrRelayDenied
		}
	case store.LookupUnknown:
		return mailblocks.ErrNoSuchUser
	case store.LookupLocal:
		// A single mailbox that is full is refused now rather than
		// bounced later; a list with a full member is not.
		if qc, ok := cfg.Directory.(QuotaChecker); ok && len(lk.Users) == 1 {
			if err := qc.CheckQuota(ctx, lk.Users[0], env.Size); err != nil {
				return err
			}
		}
	default:
		return mailblocks.ErrTemporary
	}
	for _, ck := range cfg.Checkers {
		if rc, ok := ck.(RcptChecker); ok {
			if err := rc.CheckRcpt(ctx, env, r); err != nil {
				return checkerError{ck.Name(), err}
			}
		}
	}
	return nil
}

// AuthMechanisms lists the SASL mechanisms offered (go-smtp offers them only
// over TLS unless AllowInsecureAuth).
func (s *session) AuthMechanisms() []string {
	if !s.authOffered() {
		return nil
	}
	return []string{sasl.Plain, sasl.Login}
}

func (s *session) authOffered() bool {
	cfg := s.cfg()
	if cfg.Authenticator == nil {
		return false
	}
	switch s.c.mode {
	case Submission, Submissions:
		return true
	case MX:
		return cfg.MXAuth
	}
	return false
}

// Auth starts a SASL exchange.
func (s *session) Auth(mech string) (sasl.Server, error) {
	if !s.authOffered() {
		return nil, smtp.ErrAuthUnsupported
	}
	switch strings.ToUpper(mech) {
	case sasl.Plain:
		return sasl.NewPlainServer(func(identity, username, password string) error {
			// RFC 4616 2: we do not let one user act as another.
			if identity != "" && identity != username {
				return s.authFail(username, mailblocks.ErrAuthFailed)
			}
			return s.authenticate(username, password)
		}), nil
	case sasl.Login:
		return &loginServer{auth: s.authenticate}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

func (s *session) authenticate(username, password string) error {
	cfg := s.cfg()
	c := s.c
	if c.ip.IsValid() && c.srv.limiter.authLocked(c.ip, cfg.Now(), cfg.MaxAuthFailures) {
		return c.smtpErr("auth", ErrAuthLocked)
	}
	user, err := cfg.Authenticator.Authenticate(c.ctx, username, password)
	if err != nil {
		var me *mailblocks.Error
		isReply := errors.As(err, &me)
		if isReply && me.Temporary() || !isReply && !errors.Is(err, store.ErrAuthFailed) {
			// A broken password database, or an Authenticator that
			// says so with a 4xx (RFC 4954 6: 454 4.7.0), is not the
			// user's fault: no 535, no step towards the lockout.
			return c.smtpErr("auth", err)
		}
		return s.authFail(username, mailblocks.ErrAuthFailed)
	}
	s.authUser = user
	c.log.Info("authenticated", "user", user)
	c.srv.event(Event{Kind: EventAuth, Session: c.id, Mode: c.mode, RemoteAddr: c.RemoteAddr(), Stage: "auth", User: user})
	return nil
}

// authFail records a failed attempt, and slows the client down.
func (s *session) authFail(username string, reply *mailblocks.Error) error {
	cfg := s.cfg()
	c := s.c
	if c.ip.IsValid() {
		c.srv.limiter.authFailed(c.ip, cfg.Now(), cfg.MaxAuthFailures)
	}
	n := c.authFailures.Add(1)
	c.srv.event(Event{Kind: EventAuthFailure, Session: c.id, Mode: c.mode, RemoteAddr: c.RemoteAddr(), Stage: "auth", User: username})
	if d := min(cfg.AuthFailureDelay*time.Duration(n), maxAuthDelay); d > 0 {
		waitCtx(c.ctx, d)
	}
	return c.smtpErr("auth", reply)
}

// waitCtx sleeps for d or until ctx is done.
func waitCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// loginServer is the server side of the LOGIN mechanism
// (draft-murchison-sasl-login), which go-sasl lacks: the client answers
// "Username:" then "Password:".
type loginServer struct {
	auth     func(username, password string) error
	state    int
	username string
}

func (l *loginServer) Next(response []byte) (challenge []byte, done bool, err error) {
	switch l.state {
	case 0:
		if len(response) == 0 {
			l.state = 1
			return []byte("Username:"), false, nil
		}
		// An initial response (RFC 4954 4) is the user name.
		fallthrough
	case 1:
		l.username = string(response)
		l.state = 2
		return []byte("Password:"), false, nil
	case 2:
		l.state = 3
		return nil, true, l.auth(l.username, string(response))
	}
	return nil, false, errors.New("smtpserver: unexpected LOGIN response")
}
