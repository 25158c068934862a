package maildir

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/mailblocks/mailblocks/store"
)

// Files at the root of each mailbox, beside INBOX's cur/ new/ tmp/.
const (
	// subscriptionsName lists subscribed folders, one store name a line.
	subscriptionsName = "mailblocks-subscriptions"
	// specialUseName holds RFC 6154 attributes: "<name>\t<attribute>" lines.
	specialUseName = "mailblocks-specialuse"
	// mailboxLockName serialises folder creation, deletion and renaming,
	// and deliveries to a mailbox with a quota, across processes.
	mailboxLockName = "mailblocks-mailbox.lock"
)

// mailbox is one user's Maildir++ directory. It implements store.Mailbox.
type mailbox struct {
	s    *Store
	user string
	root string

	mu      sync.Mutex // guards folders; see also lockMailbox
	folders map[string]*folder

	opMu sync.Mutex // in-process half of lockMailbox
}

var _ store.Mailbox = (*mailbox)(nil)

// User implements store.Mailbox.
func (mb *mailbox) User() string { return mb.user }

// lockMailbox serialises mailbox-wide operations within the process and
// across processes. Folder locks may be taken while holding it, never the
// other way round.
func (mb *mailbox) lockMailbox() (func(), error) {
	mb.opMu.Lock()
	unlock, err := flock(filepath.Join(mb.root, mailboxLockName))
	if err != nil {
		mb.opMu.Unlock()
		return nil, err
	}
	return func() { unlock(); mb.opMu.Unlock() }, nil
}

func (mb *mailbox) folderPath(name string) string {
	if name == store.Inbox {
		return mb.root
	}
	return filepath.Join(mb.root, encodeFolder(name))
}

// folderState returns the shared state of an existing folder; name must
// be canonical.
func (mb *mailbox) folderState(name string) (*folder, error) {
	path := mb.folderPath(name)
	if _, err := os.Stat(filepath.Join(path, "cur")); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("maildir: folder %q: %w", name, store.ErrNoSuchFolder)
		}
		return nil, fmt.Errorf("maildir: %w", err)
	}
	mb.mu.Lock()
	defer mb.mu.Unlock()
	f := mb.folders[name]
	if f == nil {
		f = &folder{mb: mb, name: name, path: path, byBase: map[string]*entry{}}
		mb.folders[name] = f
	}
	return f, nil
}

// forget drops cached folder states of name and its children (after a
// delete or rename).
func (mb *mailbox) forget(name string) {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	for n := range mb.folders {
		if n == name || strings.HasPrefix(n, name+"/") {
			delete(mb.folders, n)
		}
	}
}

// folderNames lists the folders on disk, sorted, INBOX first.
func (mb *mailbox) folderNames() ([]string, error) {
	d, err := os.Open(mb.root)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("maildir: mailbox of %s: %w", mb.user, store.ErrNoSuchUser)
		}
		return nil, fmt.Errorf("maildir: %w", err)
	}
	ents, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return nil, fmt.Errorf("maildir: %w", err)
	}
	var names []string
	for _, e := range ents {
		name, ok := decodeFolder(e)
		if !ok {
			continue
		}
		if fi, err := os.Stat(filepath.Join(mb.root, e, "cur")); err != nil || !fi.IsDir() {
			continue
		}
		names = append(names, name)
	}
	slices.Sort(names)
	return append([]string{store.Inbox}, names...), nil
}

// Folders implements store.Mailbox.
func (mb *mailbox) Folders(ctx context.Context) ([]store.FolderInfo, error) {
	names, err := mb.folderNames()
	if err != nil {
		return nil, err
	}
	uses, err := mb.readSpecialUse()
	if err != nil {
		return nil, err
	}
	subs, err := mb.readSubscriptions()
	if err != nil {
		return nil, err
	}
	out := make([]store.FolderInfo, len(names))
	for i, n := range names {
		out[i] = store.FolderInfo{Name: n, SpecialUse: uses[n], Subscribed: subs[n]}
	}
	return out, nil
}

// makeMaildir creates the folder directory at path with cur/ new/ tmp/
// and an index, atomically: it is built in the mailbox's tmp/ and renamed
// into place, so other programs never see half a folder. It returns
// store.ErrFolderExists if path exists.
func (mb *mailbox) makeMaildir(path string, inbox bool) error {
	build := path
	if !inbox {
		build = filepath.Join(mb.root, "tmp", ".mkdir-"+randHex(8))
	}
	for _, sub := range []string{"", "cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(build, sub), 0o700); err != nil {
			return fmt.Errorf("maildir: %w", err)
		}
	}
	if !inbox {
		// Maildir++: a folder is marked by this empty file (read by
		// maildrop and Courier deliveries).
		if err := os.WriteFile(filepath.Join(build, "maildirfolder"), nil, 0o600); err != nil {
			return fmt.Errorf("maildir: %w", err)
		}
	}
	f := &folder{mb: mb, path: build, byBase: map[string]*entry{}}
	if err := f.createIndex(); err != nil {
		os.RemoveAll(build)
		return err
	}
	if inbox {
		return mb.s.syncDir(filepath.Dir(path))
	}
	if err := os.Rename(build, path); err != nil {
		os.RemoveAll(build)
		if errors.Is(err, os.ErrExist) || errors.Is(err, syscall.ENOTEMPTY) {
			return store.ErrFolderExists
		}
		return fmt.Errorf("maildir: %w", err)
	}
	return mb.s.syncDir(mb.root)
}

// CreateFolder implements store.Mailbox.
func (mb *mailbox) CreateFolder(ctx context.Context, name string, use store.SpecialUse) error {
	name, err := checkFolderName(name)
	if err != nil {
		return err
	}
	if name == store.Inbox {
		return fmt.Errorf("maildir: create %s: %w", name, store.ErrFolderExists)
	}
	if !use.Valid() {
		// It is written into a line of mailblocks-specialuse.
		return fmt.Errorf("maildir: create %s: special use %q: %w", name, use, store.ErrBadName)
	}
	unlock, err := mb.lockMailbox()
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := os.Stat(mb.folderPath(name)); err == nil {
		return fmt.Errorf("maildir: create %s: %w", name, store.ErrFolderExists)
	}
	// Missing parents are created too (store.Mailbox.CreateFolder).
	parts := strings.Split(name, "/")
	for i := 1; i < len(parts); i++ {
		parent := strings.Join(parts[:i], "/")
		if parent == store.Inbox {
			continue
		}
		err := mb.makeMaildir(mb.folderPath(parent), false)
		if err == nil {
			mb.s.hub.publish(mb.user, store.Event{Kind: store.EventFolderCreated, Folder: parent})
		} else if !errors.Is(err, store.ErrFolderExists) {
			return err
		}
	}
	if err := mb.makeMaildir(mb.folderPath(name), false); err != nil {
		if errors.Is(err, store.ErrFolderExists) {
			return fmt.Errorf("maildir: create %s: %w", name, store.ErrFolderExists)
		}
		return err
	}
	if use != "" {
		if err := mb.editSpecialUse(func(m map[string]store.SpecialUse) { m[name] = use }); err != nil {
			return err
		}
	}
	mb.s.hub.publish(mb.user, store.Event{Kind: store.EventFolderCreated, Folder: name})
	return nil
}

// DeleteFolder implements store.Mailbox. The directory is first renamed
// into tmp/ (atomic for other readers), then removed.
func (mb *mailbox) DeleteFolder(ctx context.Context, name string) error {
	name, err := checkFolderName(name)
	if err != nil {
		return err
	}
	if name == store.Inbox {
		return fmt.Errorf("maildir: delete INBOX: %w", store.ErrNotPermitted)
	}
	unlock, err := mb.lockMailbox()
	if err != nil {
		return err
	}
	defer unlock()
	path := mb.folderPath(name)
	if _, err := os.Stat(filepath.Join(path, "cur")); err != nil {
		return fmt.Errorf("maildir: delete %s: %w", name, store.ErrNoSuchFolder)
	}
	trash := filepath.Join(mb.root, "tmp", ".deleted-"+randHex(8))
	if err := os.Rename(path, trash); err != nil {
		return fmt.Errorf("maildir: delete %s: %w", name, err)
	}
	mb.forget(name)
	if err := mb.s.syncDir(mb.root); err != nil {
		return fmt.Errorf("maildir: %w", err)
	}
	os.RemoveAll(trash)
	if err := mb.editSpecialUse(func(m map[string]store.SpecialUse) { delete(m, name) }); err != nil {
		return err
	}
	if err := mb.editSubscriptions(func(m map[string]bool) { delete(m, name) }); err != nil {
		return err
	}
	mb.s.hub.publish(mb.user, store.Event{Kind: store.EventFolderDeleted, Folder: name})
	return nil
}

// RenameFolder implements store.Mailbox.
func (mb *mailbox) RenameFolder(ctx context.Context, from, to string) error {
	from, err := checkFolderName(from)
	if err != nil {
		return err
	}
	to, err = checkFolderName(to)
	if err != nil {
		return err
	}
	if to == store.Inbox {
		return fmt.Errorf("maildir: rename to INBOX: %w", store.ErrFolderExists)
	}
	if from == to {
		return fmt.Errorf("maildir: rename %s to itself: %w", from, store.ErrFolderExists)
	}
	unlock, err := mb.lockMailbox()
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := os.Stat(filepath.Join(mb.folderPath(from), "cur")); err != nil {
		return fmt.Errorf("maildir: rename %s: %w", from, store.ErrNoSuchFolder)
	}
	if from != store.Inbox && strings.HasPrefix(to, from+"/") {
		return fmt.Errorf("maildir: rename %s under itself (%s): %w", from, to, store.ErrNotPermitted)
	}
	if _, err := os.Stat(mb.folderPath(to)); err == nil {
		return fmt.Errorf("maildir: rename to %s: %w", to, store.ErrFolderExists)
	}
	parts := strings.Split(to, "/")
	for i := 1; i < len(parts); i++ {
		parent := strings.Join(parts[:i], "/")
		if parent == store.Inbox || parent == from {
			continue
		}
		if err := mb.makeMaildir(mb.folderPath(parent), false); err != nil && !errors.Is(err, store.ErrFolderExists) {
			return err
		}
	}
	if from == store.Inbox {
		return mb.renameInbox(ctx, to)
	}
	names, err := mb.folderNames()
	if err != nil {
		return err
	}
	var children []string
	for _, n := range names {
		if strings.HasPrefix(n, from+"/") {
			children = append(children, n)
		}
	}
	if err := os.Rename(mb.folderPath(from), mb.folderPath(to)); err != nil {
		return fmt.Errorf("maildir: rename %s: %w", from, err)
	}
	renamed := map[string]string{from: to}
	for _, c := range children {
		nc := to + c[len(from):]
		if _, err := os.Stat(mb.folderPath(nc)); err == nil {
			continue // a child of the target with that name exists already
		}
		if err := os.Rename(mb.folderPath(c), mb.folderPath(nc)); err != nil {
			return fmt.Errorf("maildir: rename %s: %w", c, err)
		}
		renamed[c] = nc
	}
	mb.forget(from)
	if err := mb.s.syncDir(mb.root); err != nil {
		return fmt.Errorf("maildir: %w", err)
	}
	if err := mb.editSpecialUse(func(m map[string]store.SpecialUse) {
		for o, n := range renamed {
			if u, ok := m[o]; ok {
				delete(m, o)
				m[n] = u
			}
		}
	}); err != nil {
		return err
	}
	if err := mb.editSubscriptions(func(m map[string]bool) {
		for o, n := range renamed {
			if m[o] {
				delete(m, o)
				m[n] = true
			}
		}
	}); err != nil {
		return err
	}
	mb.s.hub.publish(mb.user, store.Event{Kind: store.EventFolderRenamed, Folder: from, NewName: to})
	return nil
}

// renameInbox creates to and moves every message of INBOX into it (RFC
// 3501 6.3.5); INBOX stays, empty. The mailbox lock is held.
func (mb *mailbox) renameInbox(ctx context.Context, to string) error {
	if err := mb.makeMaildir(mb.folderPath(to), false); err != nil {
		return err
	}
	mb.s.hub.publish(mb.user, store.Event{Kind: store.EventFolderCreated, Folder: to})
	src, err := mb.folderState(store.Inbox)
	if err != nil {
		return err
	}
	_, err = src.moveAll(ctx, to)
	return err
}

// SetSubscribed implements store.Mailbox. Subscribing a folder that does
// not exist is allowed (RFC 3501 6.3.6).
func (mb *mailbox) SetSubscribed(ctx context.Context, name string, subscribed bool) error {
	name, err := checkFolderName(name)
	if err != nil {
		return err
	}
	unlock, err := mb.lockMailbox()
	if err != nil {
		return err
	}
	defer unlock()
	return mb.editSubscriptions(func(m map[string]bool) {
		if subscribed {
			m[name] = true
		} else {
			delete(m, name)
		}
	})
}

// Folder implements store.Mailbox.
func (mb *mailbox) Folder(ctx context.Context, name string) (store.Folder, error) {
	name, err := checkFolderName(name)
	if err != nil {
		return nil, err
	}
	if _, err := mb.folderState(name); err != nil {
		return nil, err
	}
	return &handle{mb: mb, name: name}, nil
}

// Usage implements store.Mailbox: the sum of the CRLF sizes in every
// folder's index (so it is computed, not cached, and cannot drift).
func (mb *mailbox) Usage(ctx context.Context) (store.Usage, error) {
	u, err := mb.usage(ctx, true)
	u.Quota = mb.s.quota(mb.user)
	return u, err
}

// usage sums the sizes of every folder's messages. exact rescans folders
// that changed on disk; otherwise (for the quota check of a delivery) a
// folder already scanned only re-reads what was appended to its index,
// which counts every message added by mailblocks, in any process, without
// listing a big folder's directory on each delivery. Changes by other
// programs are then counted from the next scan on.
func (mb *mailbox) usage(ctx context.Context, exact bool) (store.Usage, error) {
	var u store.Usage
	names, err := mb.folderNames()
	if err != nil {
		return u, err
	}
	for _, n := range names {
		f, err := mb.folderState(n)
		if err != nil {
			continue // deleted meanwhile
		}
		f.mu.Lock()
		if exact || !f.scanned {
			err = f.refresh(ctx)
		} else {
			err = f.readIndexLocked()
		}
		if err == nil {
			for _, e := range f.entries {
				u.Bytes += e.size
				u.Messages++
			}
		}
		f.mu.Unlock()
		if err != nil && !errors.Is(err, store.ErrNoSuchFolder) {
			return u, err
		}
	}
	return u, nil
}

func (mb *mailbox) readLines(name string) ([]string, error) {
	data, err := os.ReadFile(filepath.Join(mb.root, name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("maildir: %w", err)
	}
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out, nil
}

func (mb *mailbox) readSubscriptions() (map[string]bool, error) {
	lines, err := mb.readLines(subscriptionsName)
	m := map[string]bool{}
	for _, l := range lines {
		if n, err := checkFolderName(l); err == nil {
			m[n] = true
		}
	}
	return m, err
}

func (mb *mailbox) readSpecialUse() (map[string]store.SpecialUse, error) {
	lines, err := mb.readLines(specialUseName)
	m := map[string]store.SpecialUse{}
	for _, l := range lines {
		n, u, ok := strings.Cut(l, "\t")
		if ok {
			m[n] = store.SpecialUse(u)
		}
	}
	return m, err
}

// editSubscriptions and editSpecialUse rewrite their files atomically;
// the mailbox lock must be held.
func (mb *mailbox) editSubscriptions(fn func(map[string]bool)) error {
	m, err := mb.readSubscriptions()
	if err != nil {
		return err
	}
	fn(m)
	var b strings.Builder
	for _, n := range slices.Sorted(maps.Keys(m)) {
		b.WriteString(n + "\n")
	}
	return mb.s.writeFileAtomic(filepath.Join(mb.root, subscriptionsName), []byte(b.String()))
}

func (mb *mailbox) editSpecialUse(fn func(map[string]store.SpecialUse)) error {
	m, err := mb.readSpecialUse()
	if err != nil {
		return err
	}
	fn(m)
	var b strings.Builder
	for _, n := range slices.Sorted(maps.Keys(m)) {
		b.WriteString(n + "\t" + string(m[n]) + "\n")
	}
	return mb.s.writeFileAtomic(filepath.Join(mb.root, specialUseName), []byte(b.String()))
}
