package imapbackend

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-sasl"

	"github.com/mailblocks/mailblocks/store"
)

// session is one IMAP connection. go-imap calls its methods one at a time
// from the connection's goroutine (IDLE runs in a second goroutine while
// the first only waits for DONE); mu guards what the event watcher shares.
type session struct {
	b      *Backend
	conn   *imapserver.Conn
	ctx    context.Context
	cancel context.CancelFunc
	log    *slog.Logger

	user string
	mbox store.Mailbox

	sel *selected // nil when no mailbox is selected

	mu      sync.Mutex
	selName string // name of the selected folder, for the watcher
	dirty   bool   // an event says the selected folder changed
	wake    chan struct{}
}

var (
	_ imapserver.SessionIMAP4rev2   = (*session)(nil)
	_ imapserver.SessionSASL        = (*session)(nil)
	_ imapserver.SessionAppendLimit = (*session)(nil)
	_ imapserver.SessionNamespace   = (*session)(nil)
	_ imapserver.SessionMove        = (*session)(nil)
	_ imapserver.Session            = (*session)(nil)
)

func (s *session) Close() error {
	s.cancel()
	if s.user != "" {
		s.log.Debug("imapbackend: session closed", "user", s.user)
	}
	return nil
}

// Login implements LOGIN (RFC 3501 6.2.3) through the Authenticator.
func (s *session) Login(username, password string) error {
	user, err := s.b.st.Authenticate(s.ctx, username, password)
	if err != nil {
		if errors.Is(err, store.ErrAuthFailed) || errors.Is(err, store.ErrNoSuchUser) || errors.Is(err, store.ErrBadName) {
			s.log.Info("imapbackend: login failed", "username", username)
			s.failureDelay()
			return imapserver.ErrAuthFailed
		}
		s.log.Error("imapbackend: authenticate", "username", username, "err", err)
		return imapNo(imap.ResponseCodeUnavailable, "Temporary authentication failure, try again later")
	}
	mbox, err := s.b.st.Mailbox(s.ctx, user)
	if err != nil {
		s.log.Error("imapbackend: open mailbox", "user", user, "err", err)
		return imapNo(imap.ResponseCodeUnavailable, "Mailbox unavailable, try again later")
	}
	s.user, s.mbox = user, mbox
	s.log = s.log.With("user", user)
	s.log.Info("imapbackend: logged in")
	s.startWatch()
	return nil
}

// failureDelay slows down a failed login; it returns early when the
// connection closes.
func (s *session) failureDelay() {
	d := s.b.opts.AuthFailureDelay
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.ctx.Done():
	}
}

// AuthenticateMechanisms lists the SASL mechanisms of AUTHENTICATE.
func (s *session) AuthenticateMechanisms() []string { return []string{sasl.Plain} }

// Authenticate implements AUTHENTICATE PLAIN (RFC 4616). An authorization
// identity other than the user itself is refused: there are no proxy
// logins.
func (s *session) Authenticate(mech string) (sasl.Server, error) {
	if mech != sasl.Plain {
		return nil, imapNo("", "Unsupported authentication mechanism")
	}
	return saslErrors{sasl.NewPlainServer(func(identity, username, password string) error {
		if identity != "" && identity != username {
			return imapNo(imap.ResponseCodeAuthorizationFailed, "Authorization identity not supported")
		}
		return s.Login(username, password)
	})}, nil
}

// saslErrors turns the errors of a SASL mechanism about a malformed client
// response (e.g. PLAIN without its two NULs) into a tagged BAD; go-imap
// would answer NO [SERVERBUG] to any error that is not an *imap.Error.
type saslErrors struct{ sasl.Server }

func (s saslErrors) Next(resp []byte) ([]byte, bool, error) {
	challenge, done, err := s.Server.Next(resp)
	var imapErr *imap.Error
	if err != nil && !errors.As(err, &imapErr) {
		err = &imap.Error{Type: imap.StatusResponseTypeBad, Text: "Malformed SASL response"}
	}
	return challenge, done, err
}

// AppendLimit implements APPENDLIMIT (RFC 7889).
func (s *session) AppendLimit() uint32 { return s.b.opts.AppendLimit }

// Namespace implements NAMESPACE (RFC 2342): one personal namespace, no
// shared folders.
func (s *session) Namespace() (*imap.NamespaceData, error) {
	return &imap.NamespaceData{Personal: []imap.NamespaceDescriptor{{Prefix: "", Delim: Delim}}}, nil
}

// startWatch follows the mailbox's change events for the session's life,
// marking the selected folder dirty and waking IDLE.
func (s *session) startWatch() {
	ch, err := s.mbox.Watch(s.ctx)
	if err != nil {
		s.log.Warn("imapbackend: watch mailbox, falling back to polling", "err", err)
		return
	}
	go func() {
		for ev := range ch {
			s.mu.Lock()
			hit := s.selName != "" && (sameFolder(ev.Folder, s.selName) ||
				(ev.Kind == store.EventFolderRenamed && sameFolder(ev.NewName, s.selName)))
			if hit {
				s.dirty = true
			}
			s.mu.Unlock()
			if hit {
				select {
				case s.wake <- struct{}{}:
				default:
				}
			}
		}
	}()
}

// sameFolder compares folder names, INBOX case-insensitively (RFC 3501
// 5.1).
func sameFolder(a, b string) bool {
	return a == b || strings.EqualFold(a, "INBOX") && strings.EqualFold(b, "INBOX")
}
