package maildir

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mailblocks/mailblocks/store"
)

// Options configure a Store. The zero value works.
type Options struct {
	// DefaultDomain completes usernames without "@" in Authenticate. It
	// overrides the default domain saved in the directory file when set.
	// Default: the saved one (none in a new store).
	DefaultDomain string
	// DefaultFolders are created with every new mailbox (and subscribed).
	// Default: store.DefaultFolders.
	DefaultFolders []store.DefaultFolder
	// Clock returns the current time. Default: time.Now.
	Clock func() time.Time
	// Logger receives warnings about unreadable files. Default: discard.
	Logger *slog.Logger
	// NoFsync skips fsync(2) of messages, directories and indexes. The
	// default (false) fsyncs, so that a message is on stable storage when
	// Deliver returns; set it only for tests and benchmarks that measure
	// something else.
	NoFsync bool
	// PollInterval is how often a mailbox with active Watch channels is
	// rescanned for changes made by other programs (other processes on
	// the same directory, MDAs, mail clients). Changes made through this
	// Store are reported at once. Default: 5s; negative disables polling.
	PollInterval time.Duration
	// Hostname goes into new file names (maildir unique names). Default:
	// os.Hostname().
	Hostname string
	// HashPassword hashes passwords for AddUser and SetPassword. Default:
	// store.HashPassword (argon2id).
	HashPassword func(password string) (string, error)
}

// Store is a store.Store and store.Admin on a directory tree of Maildir++
// mailboxes. Several Store instances, in one process or in several, may
// share the same directory. It is safe for concurrent use.
type Store struct {
	dir  string
	opts Options
	log  *slog.Logger
	host string
	pid  int
	seq  atomic.Uint64
	hub  hub

	dirMu     sync.RWMutex
	data      *store.DirectoryData
	dataStamp stamp
	// fileDefault is the default domain saved in the directory file,
	// which Options.DefaultDomain may override in memory.
	fileDefault string

	mbMu      sync.Mutex
	mailboxes map[string]*mailbox

	// dummy is checked for unknown users: made by Options.HashPassword,
	// so that they cost what known users do.
	dummy *store.DummyHash
}

var (
	_ store.Store        = (*Store)(nil)
	_ store.Admin        = (*Store)(nil)
	_ store.QuotaChecker = (*Store)(nil)
)

// ErrTooManyKeywords: a folder can hold at most 26 distinct keywords, one
// per letter a–z in maildir file names (the Dovecot convention). It
// matches store.ErrLimit with errors.Is.
var ErrTooManyKeywords = fmt.Errorf("maildir: too many keywords: %w", store.ErrLimit)

const (
	directoryFile = "directory.json"
	directoryLock = "directory.lock"
	mailDir       = "mail"
)

// Open opens (creating it if needed) the store in dir.
func Open(dir string, opts Options) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("maildir: open %s: %w", dir, err)
	}
	if err := os.MkdirAll(filepath.Join(abs, mailDir), 0o700); err != nil {
		return nil, fmt.Errorf("maildir: open %s: %w", dir, err)
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.DefaultFolders == nil {
		opts.DefaultFolders = store.DefaultFolders
	}
	if opts.PollInterval == 0 {
		opts.PollInterval = 5 * time.Second
	}
	if opts.HashPassword == nil {
		opts.HashPassword = store.HashPassword
	}
	s := &Store{
		dir:       abs,
		opts:      opts,
		log:       opts.Logger,
		pid:       os.Getpid(),
		mailboxes: map[string]*mailbox{},
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.host = opts.Hostname
	if s.host == "" {
		s.host, _ = os.Hostname()
	}
	// maildir spec: "/" and ":" in the host name are written as octal
	// escapes so that the unique name stays one file name without ":".
	s.host = strings.NewReplacer("/", `\057`, ":", `\072`, "\n", "").Replace(s.host)
	if s.host == "" {
		s.host = "localhost"
	}
	s.hub.subs = map[string]map[*watcher]struct{}{}
	s.dummy = store.NewDummyHash(opts.HashPassword)
	if err := s.Reload(context.Background()); err != nil {
		return nil, err
	}
	return s, nil
}

// Dir returns the data directory.
func (s *Store) Dir() string { return s.dir }

// Close releases resources. The Store must not be used afterwards; Watch
// channels are closed when their contexts are done.
func (s *Store) Close() error { return nil }

func (s *Store) now() time.Time { return s.opts.Clock() }

func (s *Store) sync(f *os.File) error {
	if s.opts.NoFsync {
		return nil
	}
	return f.Sync()
}

func (s *Store) syncDir(path string) error {
	if s.opts.NoFsync {
		return nil
	}
	d, err := os.Open(path)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// writeFileAtomic replaces path with data: temp file, fsync, rename, fsync
// of the directory, so that readers see the old or the new file, never a
// torn one.
func (s *Store) writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp." + randHex(6)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("maildir: write %s: %w", path, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = s.sync(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = s.syncDir(filepath.Dir(path))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("maildir: write %s: %w", path, err)
	}
	return nil
}

// Reload re-reads the directory file (users, aliases, lists, domains),
// for example after it was edited by hand. Changes written by other Store
// instances are noticed without it, on the next call that consults the
// directory.
func (s *Store) Reload(ctx context.Context) error {
	s.dirMu.Lock()
	defer s.dirMu.Unlock()
	return s.loadLocked(true)
}

// loadLocked reads directory.json if it changed (or when force is set).
// s.dirMu must be held for writing.
func (s *Store) loadLocked(force bool) error {
	path := filepath.Join(s.dir, directoryFile)
	st, err := statStamp(path)
	if errors.Is(err, os.ErrNotExist) {
		s.data, s.dataStamp = &store.DirectoryData{}, stamp{}
		return s.applyDefaults()
	}
	if err != nil {
		return fmt.Errorf("maildir: %w", err)
	}
	if !force && s.data != nil && st == s.dataStamp {
		return nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("maildir: %w", err)
	}
	d := &store.DirectoryData{}
	if err := json.Unmarshal(raw, d); err != nil {
		return fmt.Errorf("maildir: %s: %w", path, err)
	}
	s.data, s.dataStamp = d, st
	return s.applyDefaults()
}

func (s *Store) applyDefaults() error {
	s.fileDefault = s.data.DefaultDomain
	if s.opts.DefaultDomain != "" {
		if err := s.data.SetDefaultDomain(s.opts.DefaultDomain); err != nil {
			return fmt.Errorf("maildir: default domain: %w", err)
		}
	}
	return nil
}

// dir returns the current directory data, re-reading the file if another
// process changed it. The result must not be modified.
func (s *Store) directory() *store.DirectoryData {
	s.dirMu.RLock()
	path := filepath.Join(s.dir, directoryFile)
	st, err := statStamp(path)
	if (err == nil && st == s.dataStamp) || (errors.Is(err, os.ErrNotExist) && s.dataStamp == stamp{}) {
		d := s.data
		s.dirMu.RUnlock()
		return d
	}
	s.dirMu.RUnlock()
	s.dirMu.Lock()
	defer s.dirMu.Unlock()
	if err := s.loadLocked(false); err != nil {
		s.log.Warn("maildir: cannot reload the directory; keeping the previous one", "err", err)
	}
	return s.data
}

// modify applies fn to the directory under the cross-process directory
// lock, starting from the file's current content, and saves the result.
func (s *Store) modify(fn func(d *store.DirectoryData) error) error {
	unlock, err := flock(filepath.Join(s.dir, directoryLock))
	if err != nil {
		return err
	}
	defer unlock()
	s.dirMu.Lock()
	defer s.dirMu.Unlock()
	if err := s.loadLocked(false); err != nil {
		return err
	}
	d := s.data.Clone()
	if err := fn(d); err != nil {
		return err
	}
	// Options.DefaultDomain is not a directory setting: save the file's.
	saved := *d
	saved.DefaultDomain = s.fileDefault
	raw, err := json.MarshalIndent(&saved, "", "\t")
	if err != nil {
		return fmt.Errorf("maildir: %w", err)
	}
	path := filepath.Join(s.dir, directoryFile)
	if err := s.writeFileAtomic(path, append(raw, '\n')); err != nil {
		return err
	}
	st, err := statStamp(path)
	if err != nil {
		return fmt.Errorf("maildir: %w", err)
	}
	s.data, s.dataStamp = d, st
	return nil
}

// userRoot is the mailbox directory of a canonical address:
// dir/mail/<domain>/<local part>.
func (s *Store) userRoot(user string) (string, error) {
	local, domain, err := store.SplitCanonical(user)
	if err != nil {
		return "", err
	}
	local = strings.ToLower(local)
	if err := checkPathPart("domain", domain); err != nil {
		return "", err
	}
	if err := checkPathPart("user", local); err != nil {
		return "", err
	}
	base := filepath.Join(s.dir, mailDir)
	p := filepath.Join(base, domain, local)
	if !within(base, p) || filepath.Dir(filepath.Dir(p)) != base {
		return "", fmt.Errorf("maildir: user %q: %w", user, store.ErrBadName)
	}
	return p, nil
}

// LookupRecipient implements store.Directory.
func (s *Store) LookupRecipient(ctx context.Context, addr string) (store.Lookup, error) {
	d := s.directory()
	return d.Lookup(addr, func(user, folder string) bool {
		mb, err := s.mailbox(user)
		if err != nil {
			return false
		}
		_, err = mb.folderState(folder)
		return err == nil
	})
}

// Authenticate implements store.Authenticator.
func (s *Store) Authenticate(ctx context.Context, username, password string) (string, error) {
	user, hash := s.directory().Credentials(username, s.dummy)
	return store.VerifyCredentials(user, hash, password)
}

// CheckQuota implements store.QuotaChecker from the folders' indexes,
// like the quota check of a delivery: the cheap count first (index
// appends only), an exact recount before refusing. It takes no lock: the
// answer is advisory, and Deliver checks again under the mailbox lock.
func (s *Store) CheckQuota(ctx context.Context, user string, size int64) error {
	mb, err := s.mailbox(user)
	if err != nil {
		return err
	}
	q := s.quota(mb.user)
	if q == (store.Quota{}) {
		return nil
	}
	u, err := mb.usage(ctx, false)
	u.Quota = q
	if err == nil && !u.Fits(size) {
		// The cheap count may include messages another program
		// expunged.
		u, err = mb.usage(ctx, true)
		u.Quota = q
	}
	if err != nil {
		return err
	}
	if !u.Fits(size) {
		return fmt.Errorf("maildir: check quota of %s: %w", mb.user, store.ErrOverQuota)
	}
	return nil
}

// Mailbox implements store.Mailboxes.
func (s *Store) Mailbox(ctx context.Context, user string) (store.Mailbox, error) {
	return s.mailbox(user)
}

// mailbox returns the (cached) mailbox of an existing user.
func (s *Store) mailbox(user string) (*mailbox, error) {
	rec, ok := s.directory().User(user)
	if !ok {
		return nil, fmt.Errorf("maildir: mailbox %q: %w", user, store.ErrNoSuchUser)
	}
	s.mbMu.Lock()
	defer s.mbMu.Unlock()
	if mb := s.mailboxes[rec.Address]; mb != nil {
		return mb, nil
	}
	root, err := s.userRoot(rec.Address)
	if err != nil {
		return nil, err
	}
	mb := &mailbox{s: s, user: rec.Address, root: root, folders: map[string]*folder{}}
	s.mailboxes[rec.Address] = mb
	return mb, nil
}

func (s *Store) quota(user string) store.Quota {
	rec, _ := s.directory().User(user)
	return rec.Quota
}

// Deliver implements store.Deliverer: the maildir delivery protocol
// (write to tmp/, fsync, rename into new/, fsync the directory), then a
// UID in the folder's index.
func (s *Store) Deliver(ctx context.Context, user string, r io.Reader, opts store.DeliverOptions) (store.UID, error) {
	mb, err := s.mailbox(user)
	if err != nil {
		return 0, err
	}
	// A folder that is not there means INBOX (store.DeliverOptions).
	var f *folder
	if opts.Folder != "" {
		if n, err := checkFolderName(opts.Folder); err == nil {
			f, _ = mb.folderState(n)
		}
	}
	if f == nil {
		if f, err = mb.folderState(store.Inbox); err != nil {
			return 0, err
		}
	}
	return f.add(ctx, r, opts.Flags, opts.Date)
}
