package memstore

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mailblocks/mailblocks/internal/ctxio"
	"github.com/mailblocks/mailblocks/store"
)

// mailbox is one user's data. Every field is guarded by mu.
type mailbox struct {
	user string
	s    *Store

	mu       sync.Mutex
	folders  map[string]*folder
	bytes    int64 // usage over all folders
	msgs     int64
	deleted  bool // the user was deleted
	watchers map[chan store.Event]struct{}
}

// folder is one folder. Its fields are guarded by the mailbox's mu.
type folder struct {
	name        string
	use         store.SpecialUse
	subscribed  bool
	uidValidity uint32
	uidNext     store.UID
	msgs        []*message // ascending UID
	gone        bool       // deleted: handles fail with ErrNoSuchFolder
}

// message is immutable except for flags, which are replaced (never
// modified in place) so that slices handed out stay valid.
type message struct {
	uid   store.UID
	flags []string
	date  time.Time
	body  []byte
}

func (s *Store) newMailbox(user string) *mailbox {
	b := &mailbox{user: user, s: s, folders: make(map[string]*folder), watchers: make(map[chan store.Event]struct{})}
	for _, df := range s.opts.DefaultFolders {
		name := store.CanonicalFolderName(df.Name)
		if store.ValidateFolderName(name) != nil {
			continue
		}
		b.folders[name] = &folder{name: name, use: df.Use, subscribed: true, uidValidity: s.newValidity(), uidNext: 1}
	}
	if b.folders[store.Inbox] == nil {
		b.folders[store.Inbox] = &folder{name: store.Inbox, subscribed: true, uidValidity: s.newValidity(), uidNext: 1}
	}
	return b
}

// readBody reads a message normalised to CRLF, stopping early when it
// cannot fit in the quota.
func (b *mailbox) readBody(ctx context.Context, r io.Reader, q store.Quota) ([]byte, error) {
	src := ctxio.Reader(ctx, store.CRLFReader(r))
	limit := int64(-1)
	if q.Bytes > 0 {
		b.mu.Lock()
		limit = q.Bytes - b.bytes
		b.mu.Unlock()
		if limit < 0 {
			limit = 0
		}
		src = io.LimitReader(src, limit+1)
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(src); err != nil {
		return nil, fmt.Errorf("memstore: read message: %w", err)
	}
	if limit >= 0 && int64(buf.Len()) > limit {
		return nil, store.ErrOverQuota
	}
	return slices.Clip(buf.Bytes()), nil
}

// add appends a message to f and notifies watchers. b.mu is held.
func (b *mailbox) add(f *folder, body []byte, flags []string, date time.Time) store.UID {
	uid := f.uidNext
	f.uidNext++
	f.msgs = append(f.msgs, &message{uid: uid, flags: slices.Clip(flags), date: date, body: body})
	b.bytes += int64(len(body))
	b.msgs++
	b.notify(store.Event{Kind: store.EventMessageAdded, Folder: f.name, UID: uid})
	return uid
}

// addWithin adds a delivered or appended message unless it would take the
// mailbox over quota q. b.mu is held.
func (b *mailbox) addWithin(q store.Quota, f *folder, body []byte, flags []string, date time.Time) (store.UID, error) {
	if q.Exceeded(b.bytes, b.msgs, int64(len(body)), 1) {
		return 0, fmt.Errorf("memstore: add to %s of %s: %w", f.name, b.user, store.ErrOverQuota)
	}
	return b.add(f, body, flags, date), nil
}

// notify sends ev to every watcher without blocking. b.mu is held. When a
// watcher's buffer is full the event is dropped: the buffer then holds
// events the receiver has not read yet, so it still wakes up after this
// change and re-reads the state, which is all the Watch contract
// promises.
func (b *mailbox) notify(ev store.Event) {
	for ch := range b.watchers {
		select {
		case ch <- ev:
		default:
		}
	}
}

// find returns the index of uid in f.msgs, or -1.
func (f *folder) find(uid store.UID) int {
	i, ok := slices.BinarySearchFunc(f.msgs, uid, func(m *message, u store.UID) int { return cmp.Compare(m.uid, u) })
	if !ok {
		return -1
	}
	return i
}

// mailboxHandle implements store.Mailbox.
type mailboxHandle struct {
	s *Store
	b *mailbox
}

var _ store.Mailbox = (*mailboxHandle)(nil)

func (m *mailboxHandle) User() string { return m.b.user }

// lock locks the mailbox and checks that the user still exists.
func (m *mailboxHandle) lock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.b.mu.Lock()
	if m.b.deleted {
		m.b.mu.Unlock()
		return fmt.Errorf("memstore: mailbox %s: %w", m.b.user, store.ErrNoSuchUser)
	}
	return nil
}

func (m *mailboxHandle) Folders(ctx context.Context) ([]store.FolderInfo, error) {
	if err := m.lock(ctx); err != nil {
		return nil, err
	}
	defer m.b.mu.Unlock()
	out := make([]store.FolderInfo, 0, len(m.b.folders))
	for _, f := range m.b.folders {
		out = append(out, store.FolderInfo{Name: f.name, SpecialUse: f.use, Subscribed: f.subscribed})
	}
	slices.SortFunc(out, func(a, b store.FolderInfo) int {
		switch {
		case a.Name == store.Inbox:
			return -1
		case b.Name == store.Inbox:
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out, nil
}

// folderName canonicalises and validates a folder name.
func folderName(name string) (string, error) {
	n := store.CanonicalFolderName(name)
	if err := store.ValidateFolderName(n); err != nil {
		return "", err
	}
	return n, nil
}

func (m *mailboxHandle) CreateFolder(ctx context.Context, name string, use store.SpecialUse) error {
	n, err := folderName(name)
	if err != nil {
		return err
	}
	if !use.Valid() {
		return fmt.Errorf("memstore: create %s: special use %q: %w", n, use, store.ErrBadName)
	}
	if err := m.lock(ctx); err != nil {
		return err
	}
	defer m.b.mu.Unlock()
	if m.b.folders[n] != nil {
		return fmt.Errorf("memstore: create %s: %w", n, store.ErrFolderExists)
	}
	m.b.createParents(n)
	m.b.createFolder(n, use)
	return nil
}

// createFolder makes a new, empty folder. b.mu is held.
func (b *mailbox) createFolder(name string, use store.SpecialUse) *folder {
	f := &folder{name: name, use: use, uidValidity: b.s.newValidity(), uidNext: 1}
	b.folders[name] = f
	b.notify(store.Event{Kind: store.EventFolderCreated, Folder: name})
	return f
}

// createParents creates the missing superiors of name (RFC 3501 6.3.3).
// b.mu is held.
func (b *mailbox) createParents(name string) {
	for i := range len(name) {
		if name[i] == '/' {
			if p := name[:i]; b.folders[p] == nil {
				b.createFolder(p, "")
			}
		}
	}
}

func (m *mailboxHandle) DeleteFolder(ctx context.Context, name string) error {
	n, err := folderName(name)
	if err != nil {
		return err
	}
	if n == store.Inbox {
		return fmt.Errorf("memstore: delete INBOX: %w", store.ErrNotPermitted)
	}
	if err := m.lock(ctx); err != nil {
		return err
	}
	defer m.b.mu.Unlock()
	f := m.b.folders[n]
	if f == nil {
		return fmt.Errorf("memstore: delete %s: %w", n, store.ErrNoSuchFolder)
	}
	for _, msg := range f.msgs {
		m.b.bytes -= int64(len(msg.body))
		m.b.msgs--
	}
	f.msgs = nil
	f.gone = true
	delete(m.b.folders, n)
	m.b.notify(store.Event{Kind: store.EventFolderDeleted, Folder: n})
	return nil
}

func (m *mailboxHandle) RenameFolder(ctx context.Context, from, to string) error {
	src, err := folderName(from)
	if err != nil {
		return err
	}
	dst, err := folderName(to)
	if err != nil {
		return err
	}
	if err := m.lock(ctx); err != nil {
		return err
	}
	defer m.b.mu.Unlock()
	b := m.b
	f := b.folders[src]
	switch {
	case f == nil:
		return fmt.Errorf("memstore: rename %s: %w", src, store.ErrNoSuchFolder)
	case b.folders[dst] != nil:
		return fmt.Errorf("memstore: rename %s to %s: %w", src, dst, store.ErrFolderExists)
	case dst == src || (src != store.Inbox && strings.HasPrefix(dst, src+"/")):
		return fmt.Errorf("memstore: rename %s into itself (%s): %w", src, dst, store.ErrNotPermitted)
	}
	if src == store.Inbox {
		// RFC 3501 6.3.5: renaming INBOX moves its messages to a new
		// folder and leaves INBOX empty; its inferiors stay.
		b.createParents(dst)
		nf := b.createFolder(dst, "")
		nf.msgs, nf.uidNext = f.msgs, f.uidNext
		f.msgs = nil
		for _, msg := range nf.msgs {
			b.notify(store.Event{Kind: store.EventMessageExpunged, Folder: store.Inbox, UID: msg.uid})
		}
		return nil
	}
	// Rename the folder and its inferiors; they keep their UIDVALIDITY
	// (their messages and UIDs do not change).
	var moved []*folder
	for name, g := range b.folders {
		if name == src || strings.HasPrefix(name, src+"/") {
			moved = append(moved, g)
		}
	}
	for _, g := range moved {
		newName := dst + strings.TrimPrefix(g.name, src)
		if b.folders[newName] != nil {
			return fmt.Errorf("memstore: rename %s to %s: %w", g.name, newName, store.ErrFolderExists)
		}
	}
	for _, g := range moved {
		delete(b.folders, g.name)
	}
	for _, g := range moved {
		old := g.name
		g.name = dst + strings.TrimPrefix(old, src)
		b.folders[g.name] = g
		b.notify(store.Event{Kind: store.EventFolderRenamed, Folder: old, NewName: g.name})
	}
	b.createParents(dst)
	return nil
}

func (m *mailboxHandle) SetSubscribed(ctx context.Context, name string, subscribed bool) error {
	n, err := folderName(name)
	if err != nil {
		return err
	}
	if err := m.lock(ctx); err != nil {
		return err
	}
	defer m.b.mu.Unlock()
	f := m.b.folders[n]
	if f == nil {
		return fmt.Errorf("memstore: subscribe %s: %w", n, store.ErrNoSuchFolder)
	}
	f.subscribed = subscribed
	return nil
}

func (m *mailboxHandle) Folder(ctx context.Context, name string) (store.Folder, error) {
	n, err := folderName(name)
	if err != nil {
		return nil, err
	}
	if err := m.lock(ctx); err != nil {
		return nil, err
	}
	defer m.b.mu.Unlock()
	f := m.b.folders[n]
	if f == nil {
		return nil, fmt.Errorf("memstore: folder %s: %w", n, store.ErrNoSuchFolder)
	}
	return &folderHandle{m: m, f: f}, nil
}

func (m *mailboxHandle) Usage(ctx context.Context) (store.Usage, error) {
	q := m.s.quota(m.b.user)
	if err := m.lock(ctx); err != nil {
		return store.Usage{}, err
	}
	defer m.b.mu.Unlock()
	return store.Usage{Bytes: m.b.bytes, Messages: m.b.msgs, Quota: q}, nil
}

func (m *mailboxHandle) Watch(ctx context.Context) (<-chan store.Event, error) {
	if err := m.lock(ctx); err != nil {
		return nil, err
	}
	ch := make(chan store.Event, m.s.opts.WatchBuffer)
	m.b.watchers[ch] = struct{}{}
	m.b.mu.Unlock()
	context.AfterFunc(ctx, func() {
		m.b.mu.Lock()
		delete(m.b.watchers, ch)
		close(ch)
		m.b.mu.Unlock()
	})
	return ch, nil
}
