package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/mailblocks/mailblocks"
	"github.com/mailblocks/mailblocks/store"
)

// router decides where an accepted message goes: local recipients (after
// aliases, lists, catch-all and plus-addressing) into the store, the others
// into the outbound queue. It is the smtpserver handler and the queue's
// bounce handler, so that bounces to local senders land in their INBOX.
//
// It returns nil only when every copy is durable: the store and the queue
// fsync before they return, so the 250 that follows loses nothing on a crash.
type router struct {
	dir      store.Directory
	deliver  store.Deliverer
	enqueue  func(ctx context.Context, env *mailblocks.Envelope, body io.Reader) (string, error)
	spoolDir string
	log      *slog.Logger
}

// Handle routes one message. The body is spooled once to a temporary file,
// then read once per local mailbox and once for the queue.
func (r *router) Handle(ctx context.Context, env *mailblocks.Envelope, body io.Reader) error {
	f, err := r.spool(body)
	if err != nil {
		return err
	}
	defer removeSpooled(f)
	statuses := r.route(ctx, env, f, true)
	// SMTP has one reply for the whole DATA: any temporary failure makes the
	// client retry everything (a local mailbox may then get a duplicate,
	// which is better than a loss); otherwise the first permanent failure
	// is reported.
	var permanent error
	for _, err := range statuses {
		if err == nil {
			continue
		}
		if mailblocks.IsTemporary(err) {
			return err
		}
		if permanent == nil {
			permanent = err
		}
	}
	return permanent
}

// HandleLMTP routes one message and reports per recipient (RFC 2033).
func (r *router) HandleLMTP(ctx context.Context, env *mailblocks.Envelope, body io.Reader) []error {
	f, err := r.spool(body)
	if err != nil {
		errs := make([]error, len(env.Recipients))
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	defer removeSpooled(f)
	return r.route(ctx, env, f, false)
}

// spool copies body to a temporary file in the spool directory, from
// which route reads it once per copy. The caller removes it with
// removeSpooled; files left by a crash are removed at the next start.
func (r *router) spool(body io.Reader) (*os.File, error) {
	f, err := os.CreateTemp(r.spoolDir, spoolPattern)
	if err != nil {
		return nil, fmt.Errorf("router: spool: %w", err)
	}
	if _, err := io.Copy(f, body); err != nil {
		removeSpooled(f)
		return nil, fmt.Errorf("router: spool: %w", err)
	}
	return f, nil
}

func removeSpooled(f *os.File) {
	f.Close()
	os.Remove(f.Name())
}

// spoolPattern names the router's temporary files (os.CreateTemp).
const spoolPattern = "incoming-*"

// route delivers the spooled message and returns one error per recipient
// of env. With allOrNothing (SMTP, one reply for the whole message), a
// failure found before any copy is made stops the delivery: a 5xx after
// some mailboxes already got their copy would tell the sender the message
// was refused although it was delivered.
func (r *router) route(ctx context.Context, env *mailblocks.Envelope, f *os.File, allOrNothing bool) []error {
	errs := make([]error, len(env.Recipients))
	local := map[string]*target{}
	var localOrder []string
	var remote []mailblocks.Recipient
	var remoteIdx []int
	for i, rc := range env.Recipients {
		lk, err := r.dir.LookupRecipient(ctx, rc.Address)
		if err != nil {
			errs[i] = err
			continue
		}
		switch lk.Kind {
		case store.LookupLocal:
			for _, u := range lk.Users {
				t := local[u]
				if t == nil {
					t = &target{folder: lk.Folder}
					local[u] = t
					localOrder = append(localOrder, u)
				}
				t.idx = append(t.idx, i)
			}
			for _, addr := range lk.Remote {
				fwd := rc
				fwd.Address = addr
				if fwd.OriginalRecipient == "" {
					fwd.OriginalRecipient = "rfc822;" + rc.Address
				}
				remote = append(remote, fwd)
				remoteIdx = append(remoteIdx, i)
			}
		case store.LookupNotOurDomain:
			// smtpserver has already checked that this client may relay.
			remote = append(remote, rc)
			remoteIdx = append(remoteIdx, i)
		default:
			errs[i] = mailblocks.ErrNoSuchUser
		}
	}
	if allOrNothing && !r.precheck(ctx, f, local, localOrder, errs) {
		return errs
	}
	for _, u := range localOrder {
		t := local[u]
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			for _, i := range t.idx {
				errs[i] = err
			}
			continue
		}
		_, err := r.deliver.Deliver(ctx, u, f, store.DeliverOptions{Folder: t.folder})
		if err != nil {
			r.log.Warn("local delivery failed", "msgid", env.ID, "user", u, "err", err)
			for _, i := range t.idx {
				if errs[i] == nil {
					errs[i] = err
				}
			}
			continue
		}
		r.log.Info("delivered", "msgid", env.ID, "from", env.From, "user", u, "folder", folderName(t.folder))
	}
	if len(remote) > 0 {
		out := env.Clone()
		out.Recipients = remote
		var err error
		if _, err = f.Seek(0, io.SeekStart); err == nil {
			var id string
			id, err = r.enqueue(ctx, out, f)
			if err == nil {
				r.log.Info("queued", "msgid", env.ID, "queueid", id, "from", env.From, "rcpts", addresses(remote))
			}
		}
		if err != nil {
			r.log.Error("enqueue failed", "msgid", env.ID, "err", err)
			for _, i := range remoteIdx {
				if errs[i] == nil {
					errs[i] = err
				}
			}
		}
	}
	return errs
}

// precheck reports whether the delivery may start: no recipient failed
// its lookup, and every local mailbox has room for the message. Being over
// quota is the permanent failure a delivery meets in practice; checking it
// for every mailbox first (store.QuotaChecker, with the spooled size in
// CRLF octets) refuses the message before any copy is made. The check is
// advisory, as the store's doc says: a concurrent delivery can still fill
// a mailbox in between, and Deliver settles that race.
func (r *router) precheck(ctx context.Context, f *os.File, local map[string]*target, order []string, errs []error) bool {
	for _, err := range errs {
		if err != nil {
			return false
		}
	}
	qc, ok := r.deliver.(store.QuotaChecker)
	if !ok || len(order) == 0 {
		return true
	}
	fi, err := f.Stat()
	if err != nil {
		return true // Deliver will meet the same problem and report it
	}
	fits := true
	for _, u := range order {
		if err := qc.CheckQuota(ctx, u, fi.Size()); err != nil {
			for _, i := range local[u].idx {
				errs[i] = err
			}
			fits = false
		}
	}
	return fits
}

// target is one local mailbox of a message.
type target struct {
	folder string
	idx    []int // the envelope recipients this mailbox stands for
}

func folderName(f string) string {
	if f == "" {
		return "INBOX"
	}
	return f
}

func addresses(rs []mailblocks.Recipient) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = r.Address
	}
	return strings.Join(s, ",")
}

// bounce is the queue's bounce handler: a DSN for a local sender is stored
// in its INBOX; one for a remote sender goes back out through the queue.
// Bounces to addresses that do not exist are dropped (and logged): there is
// nobody to tell.
func (r *router) bounce(ctx context.Context, env *mailblocks.Envelope, body io.Reader) error {
	err := r.Handle(ctx, env, body)
	if errors.Is(err, mailblocks.ErrNoSuchUser) {
		r.log.Warn("bounce to unknown local address dropped", "msgid", env.ID, "rcpts", addresses(env.Recipients))
		return nil
	}
	return err
}
