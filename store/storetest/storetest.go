// Package storetest is the conformance suite that every implementation of
// store.Store and store.Admin passes (store/memstore, store/maildir, and
// any later one):
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) storetest.Harness {
//			return storetest.Harness{Store: memstore.New(memstore.Options{
//				DefaultDomain: storetest.DefaultDomain,
//				HashPassword:  memstore.InsecureFastHash,
//			})}
//		})
//	}
//
// It covers UIDs (RFC 3501 2.3.1.1), UIDVALIDITY, flags, expunge, copy and
// move (RFC 4315, RFC 6851), append, folder creation, deletion, renaming
// (INBOX included, RFC 3501 6.3.5) and subscription, special-use default
// folders (RFC 6154), quotas (and the optional store.QuotaChecker), the
// directory (users, default-domain login, aliases, lists, catch-all,
// plus-addressing), hostile names, authentication, concurrent delivery
// while a reader lists, change events, streamed large bodies and CRLF
// normalisation; and, when the store can be reopened, persistence of all
// of it.
package storetest

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks/store"
)

// Store is what the suite tests: a store with its administration.
type Store interface {
	store.Store
	store.Admin
}

// DefaultDomain is the default domain the factory must configure: users
// of this domain log in without "@domain".
const DefaultDomain = "example.org"

// Harness is what the factory returns for each subtest.
type Harness struct {
	// Store is a new, empty store whose default domain is DefaultDomain,
	// whose default folders are store.DefaultFolders and whose
	// plus-addressing separator is "+". It may hash passwords with cheap
	// parameters to keep the suite fast.
	Store Store
	// Reopen, when not nil, closes Store and opens a new Store on the same
	// persistent state (a process restart). Without it the persistence
	// tests are not run (a store that keeps nothing has nothing to test
	// there).
	Reopen func(t *testing.T) Store
}

// Run runs the whole suite as subtests of t. newStore is called once per
// subtest and must return an independent, empty store (use t.TempDir and
// t.Cleanup for storage and closing).
func Run(t *testing.T, newStore func(t *testing.T) Harness) {
	r := &runner{newStore: newStore}
	// What the implementation offers decides which subtests exist, so that
	// none of them is reported as skipped in CI.
	probe := newStore(t)
	_, r.quotaChecker = probe.Store.(store.QuotaChecker)
	r.persistent = probe.Reopen != nil
	t.Run("Directory", r.directory)
	t.Run("Auth", r.auth)
	t.Run("HostileNames", r.hostile)
	t.Run("Folders", r.folders)
	t.Run("Messages", r.messages)
	t.Run("Quota", r.quota)
	t.Run("Concurrency", r.concurrency)
	t.Run("Events", r.events)
	if r.persistent {
		t.Run("Persistence", r.persistence)
	}
}

type runner struct {
	newStore func(t *testing.T) Harness
	// Optional capabilities of the implementation.
	quotaChecker, persistent bool
}

// Users created by setup.
const (
	alice   = "alice@" + DefaultDomain
	alicePW = "alice-secret"
	bob     = "bob@" + DefaultDomain
	bobPW   = "bob-secret"
)

// timeout bounds every wait of the suite; generous for -race on a busy
// machine.
const timeout = 20 * time.Second

// fixture is one subtest's store with alice and bob created.
type fixture struct {
	t   *testing.T
	ctx context.Context
	h   Harness
	s   Store
}

func (r *runner) setup(t *testing.T) *fixture {
	t.Helper()
	h := r.newStore(t)
	require.NotNil(t, h.Store, "factory returned no store")
	ctx, cancel := context.WithTimeout(context.Background(), 2*timeout)
	t.Cleanup(cancel)
	f := &fixture{t: t, ctx: ctx, h: h, s: h.Store}
	require.NoError(t, f.s.AddDomain(ctx, DefaultDomain))
	require.NoError(t, f.s.AddUser(ctx, alice, alicePW, store.Quota{}))
	require.NoError(t, f.s.AddUser(ctx, bob, bobPW, store.Quota{}))
	return f
}

func (f *fixture) mailbox(user string) store.Mailbox {
	f.t.Helper()
	mb, err := f.s.Mailbox(f.ctx, user)
	require.NoError(f.t, err)
	require.Equal(f.t, user, mb.User())
	return mb
}

func (f *fixture) folder(mb store.Mailbox, name string) store.Folder {
	f.t.Helper()
	fo, err := mb.Folder(f.ctx, name)
	require.NoError(f.t, err, "open folder %q", name)
	return fo
}

func (f *fixture) deliver(user, body string, opts store.DeliverOptions) store.UID {
	f.t.Helper()
	uid, err := f.s.Deliver(f.ctx, user, bytes.NewReader([]byte(body)), opts)
	require.NoError(f.t, err)
	require.NotZero(f.t, uid)
	return uid
}

func (f *fixture) append(fo store.Folder, body string, flags ...string) store.UID {
	f.t.Helper()
	uid, err := fo.Append(f.ctx, bytes.NewReader([]byte(body)), flags, time.Time{})
	require.NoError(f.t, err)
	require.NotZero(f.t, uid)
	return uid
}

func (f *fixture) read(fo store.Folder, uid store.UID) string {
	f.t.Helper()
	rc, err := fo.Open(f.ctx, uid)
	require.NoError(f.t, err)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	require.NoError(f.t, err)
	return string(b)
}

func (f *fixture) list(fo store.Folder) []store.MessageInfo {
	f.t.Helper()
	l, err := fo.List(f.ctx)
	require.NoError(f.t, err)
	return l
}

func (f *fixture) uids(fo store.Folder) []store.UID {
	f.t.Helper()
	var out []store.UID
	for _, m := range f.list(fo) {
		out = append(out, m.UID)
	}
	return out
}

func (f *fixture) status(fo store.Folder) store.FolderStatus {
	f.t.Helper()
	st, err := fo.Status(f.ctx)
	require.NoError(f.t, err)
	return st
}

func (f *fixture) folderNames(mb store.Mailbox) []string {
	f.t.Helper()
	fs, err := mb.Folders(f.ctx)
	require.NoError(f.t, err)
	var out []string
	for _, fi := range fs {
		out = append(out, fi.Name)
	}
	return out
}

// msg returns a small RFC 5322 message with CRLF line endings.
func msg(subject string) string {
	return "From: sender@remote.test\r\nTo: alice@example.org\r\nSubject: " + subject +
		"\r\nMessage-ID: <" + subject + "@remote.test>\r\n\r\nBody of " + subject + ".\r\n"
}
