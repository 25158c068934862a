package memstore

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mailblocks/mailblocks/store"
)

// Options configure a Store. The zero value works.
type Options struct {
	// DefaultDomain is the domain of usernames given without "@" to
	// Authenticate. It is made local. Empty means none.
	DefaultDomain string
	// DefaultFolders are created with every new mailbox. nil means
	// store.DefaultFolders.
	DefaultFolders []store.DefaultFolder
	// PlusSeparator separates a local part from its plus-addressing tag.
	// Empty means "+".
	PlusSeparator string
	// Clock gives the time of internal dates and UIDVALIDITY values. nil
	// means time.Now.
	Clock func() time.Time
	// HashPassword hashes the passwords given to AddUser and SetPassword.
	// nil means store.HashPassword (argon2id). Tests may pass
	// InsecureFastHash.
	HashPassword func(pw string) (string, error)
	// WatchBuffer is the capacity of each Watch channel. 0 means 16.
	WatchBuffer int
}

// Store is an in-memory store.Store and store.Admin. It is safe for
// concurrent use. Lock order: Store.mu, then a mailbox's mu; never the
// reverse.
type Store struct {
	opts     Options
	validity atomic.Uint32 // last UIDVALIDITY handed out

	// dummy is checked for unknown users: made by opts.HashPassword, so
	// that they cost what known users do.
	dummy *store.DummyHash

	mu    sync.RWMutex
	dir   store.DirectoryData
	boxes map[string]*mailbox // by canonical user
}

var (
	_ store.Store        = (*Store)(nil)
	_ store.Admin        = (*Store)(nil)
	_ store.QuotaChecker = (*Store)(nil)
)

// New returns an empty store. A malformed DefaultDomain is ignored (no
// default domain).
func New(opts Options) *Store {
	if opts.DefaultFolders == nil {
		opts.DefaultFolders = store.DefaultFolders
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.HashPassword == nil {
		opts.HashPassword = store.HashPassword
	}
	if opts.WatchBuffer <= 0 {
		opts.WatchBuffer = 16
	}
	s := &Store{opts: opts, boxes: make(map[string]*mailbox), dummy: store.NewDummyHash(opts.HashPassword)}
	s.dir.PlusSeparator = opts.PlusSeparator
	if opts.DefaultDomain != "" && s.dir.SetDefaultDomain(opts.DefaultDomain) == nil {
		_ = s.dir.AddDomain(s.dir.DefaultDomain)
	}
	return s
}

// NewWithUsers returns a store holding users, a map of address to
// password, for tests. When opts.HashPassword is nil it uses
// InsecureFastHash so that tests stay fast.
func NewWithUsers(opts Options, users map[string]string) (*Store, error) {
	if opts.HashPassword == nil {
		opts.HashPassword = InsecureFastHash
	}
	s := New(opts)
	for addr, pw := range users {
		if err := s.AddUser(context.Background(), addr, pw, store.Quota{}); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// InsecureFastHash hashes with argon2id parameters far too weak for real
// passwords (64 KiB, one pass). It is meant for tests, where the default
// cost would make every AddUser and Authenticate slow.
func InsecureFastHash(pw string) (string, error) {
	return store.HashPasswordParams(pw, store.Argon2Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32})
}

// newValidity returns a fresh UIDVALIDITY: the clock's Unix time when it
// is ahead, else one more than the last value, so values never repeat
// within a Store and are never zero.
func (s *Store) newValidity() uint32 {
	now := uint32(s.opts.Clock().Unix())
	for {
		old := s.validity.Load()
		n := max(old+1, now)
		if n == 0 {
			n = 1
		}
		if s.validity.CompareAndSwap(old, n) {
			return n
		}
	}
}

// box returns the mailbox of user and its quota.
func (s *Store) box(user string) (*mailbox, store.Quota, error) {
	c, err := store.CanonicalAddress(user)
	if err != nil {
		return nil, store.Quota{}, fmt.Errorf("memstore: mailbox %q: %w", user, store.ErrNoSuchUser)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	b := s.boxes[c]
	if b == nil {
		return nil, store.Quota{}, fmt.Errorf("memstore: mailbox %s: %w", c, store.ErrNoSuchUser)
	}
	return b, s.dir.Users[c].Quota, nil
}

// quota returns the current quota of a user.
func (s *Store) quota(user string) store.Quota {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.dir.Users[user].Quota
}

// LookupRecipient implements store.Directory.
func (s *Store) LookupRecipient(ctx context.Context, addr string) (store.Lookup, error) {
	if err := ctx.Err(); err != nil {
		return store.Lookup{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.dir.Lookup(addr, func(user, folder string) bool {
		b := s.boxes[user]
		if b == nil {
			return false
		}
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.folders[folder] != nil
	})
}

// Authenticate implements store.Authenticator.
func (s *Store) Authenticate(ctx context.Context, username, password string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	s.mu.RLock()
	user, hash := s.dir.Credentials(username, s.dummy)
	s.mu.RUnlock()
	// The hash is checked outside the lock: it is slow by design.
	return store.VerifyCredentials(user, hash, password)
}

// Deliver implements store.Deliverer. The body is normalised to CRLF line
// endings.
func (s *Store) Deliver(ctx context.Context, user string, r io.Reader, opts store.DeliverOptions) (store.UID, error) {
	b, q, err := s.box(user)
	if err != nil {
		return 0, err
	}
	flags, err := store.NormalizeFlags(opts.Flags)
	if err != nil {
		return 0, err
	}
	body, err := b.readBody(ctx, r, q)
	if err != nil {
		return 0, err
	}
	date := opts.Date
	if date.IsZero() {
		date = s.opts.Clock()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.deleted {
		return 0, fmt.Errorf("memstore: deliver to %s: %w", b.user, store.ErrNoSuchUser)
	}
	f := b.folders[store.CanonicalFolderName(opts.Folder)]
	if f == nil {
		f = b.folders[store.Inbox]
	}
	return b.addWithin(q, f, body, flags, date)
}

// CheckQuota implements store.QuotaChecker. It is advisory: Deliver
// checks the quota again, under the mailbox lock.
func (s *Store) CheckQuota(ctx context.Context, user string, size int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b, q, err := s.box(user)
	if err != nil {
		return err
	}
	b.mu.Lock()
	u := store.Usage{Bytes: b.bytes, Messages: b.msgs, Quota: q}
	deleted := b.deleted
	b.mu.Unlock()
	if deleted {
		return fmt.Errorf("memstore: check quota of %s: %w", b.user, store.ErrNoSuchUser)
	}
	if !u.Fits(size) {
		return fmt.Errorf("memstore: check quota of %s: %w", b.user, store.ErrOverQuota)
	}
	return nil
}

// Mailbox implements store.Mailboxes.
func (s *Store) Mailbox(ctx context.Context, user string) (store.Mailbox, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b, _, err := s.box(user)
	if err != nil {
		return nil, err
	}
	return &mailboxHandle{s: s, b: b}, nil
}

// AddDomain implements store.Admin.
func (s *Store) AddDomain(ctx context.Context, domain string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dir.AddDomain(domain)
}

// Domains implements store.Admin.
func (s *Store) Domains(ctx context.Context) ([]string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.dir.DomainList(), nil
}

// AddUser implements store.Admin.
func (s *Store) AddUser(ctx context.Context, addr, password string, quota store.Quota) error {
	// Hash before taking the lock: it is slow by design.
	hash, err := s.hash(password)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.dir.AddUser(addr, password, quota, hash)
	if err != nil {
		return err
	}
	s.boxes[c] = s.newMailbox(c)
	return nil
}

// hash hashes password now and returns a function that gives the result,
// for DirectoryData's hash parameter.
func (s *Store) hash(password string) (func(string) (string, error), error) {
	if password == "" {
		return nil, nil
	}
	h, err := s.opts.HashPassword(password)
	if err != nil {
		return nil, fmt.Errorf("memstore: hash password: %w", err)
	}
	return func(string) (string, error) { return h, nil }, nil
}

// SetPassword implements store.Admin.
func (s *Store) SetPassword(ctx context.Context, addr, password string) error {
	hash, err := s.hash(password)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dir.SetPassword(addr, password, hash)
}

// SetQuota implements store.Admin.
func (s *Store) SetQuota(ctx context.Context, addr string, quota store.Quota) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dir.SetQuota(addr, quota)
}

// DeleteUser implements store.Admin. Open handles of the user's mailbox
// fail with ErrNoSuchUser from then on.
func (s *Store) DeleteUser(ctx context.Context, addr string) error {
	s.mu.Lock()
	c, err := s.dir.DeleteUser(addr)
	b := s.boxes[c]
	delete(s.boxes, c)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if b != nil {
		b.mu.Lock()
		b.deleted = true
		b.folders = nil
		b.mu.Unlock()
	}
	return nil
}

// Users implements store.Admin.
func (s *Store) Users(ctx context.Context) ([]string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.dir.UserList(), nil
}

// SetAlias implements store.Admin.
func (s *Store) SetAlias(ctx context.Context, alias, target string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dir.SetAlias(alias, target)
}

// SetList implements store.Admin.
func (s *Store) SetList(ctx context.Context, addr string, members []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dir.SetList(addr, members)
}

// SetCatchAll implements store.Admin.
func (s *Store) SetCatchAll(ctx context.Context, domain, target string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dir.SetCatchAll(domain, target)
}

// Directory returns a copy of the directory, e.g. to inspect it in a test.
func (s *Store) Directory() *store.DirectoryData {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.dir.Clone()
}
