package pop3

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mailblocks/mailblocks/store"
)

// faultStore is a small in-memory Store for the tests that need to inject
// failures the real stores cannot be made to produce (a read that breaks
// half way, an expunge that fails). The other tests use store/memstore.
type faultStore struct {
	mu        sync.Mutex
	passwords map[string]string
	msgs      map[store.UID][]byte
	flags     map[store.UID][]string
	next      store.UID

	failOpen    error // Open fails
	breakRead   bool  // reads fail after the first octets
	failExpunge error
}

func newFaultStore() *faultStore {
	return &faultStore{
		passwords: map[string]string{"u@example.org": "pw"},
		msgs:      map[store.UID][]byte{},
		flags:     map[store.UID][]string{},
		next:      1,
	}
}

func (f *faultStore) add(msg string) store.UID {
	f.mu.Lock()
	defer f.mu.Unlock()
	uid := f.next
	f.next++
	f.msgs[uid] = []byte(msg)
	return uid
}

func (f *faultStore) Authenticate(ctx context.Context, username, password string) (string, error) {
	if !strings.Contains(username, "@") {
		username += "@example.org"
	}
	if pw, ok := f.passwords[username]; ok && pw == password {
		return username, nil
	}
	return "", store.ErrAuthFailed
}

func (f *faultStore) Mailbox(ctx context.Context, user string) (store.Mailbox, error) {
	return fakeMailbox{f}, nil
}

type fakeMailbox struct{ f *faultStore }

func (m fakeMailbox) User() string { return "u@example.org" }
func (m fakeMailbox) Folders(context.Context) ([]store.FolderInfo, error) {
	return []store.FolderInfo{{Name: "INBOX"}}, nil
}
func (m fakeMailbox) CreateFolder(context.Context, string, store.SpecialUse) error {
	return store.ErrNotPermitted
}
func (m fakeMailbox) DeleteFolder(context.Context, string) error { return store.ErrNotPermitted }
func (m fakeMailbox) RenameFolder(context.Context, string, string) error {
	return store.ErrNotPermitted
}
func (m fakeMailbox) SetSubscribed(context.Context, string, bool) error { return nil }
func (m fakeMailbox) Folder(ctx context.Context, name string) (store.Folder, error) {
	if !strings.EqualFold(name, "INBOX") {
		return nil, store.ErrNoSuchFolder
	}
	return fakeFolder{m.f}, nil
}
func (m fakeMailbox) Usage(context.Context) (store.Usage, error) { return store.Usage{}, nil }
func (m fakeMailbox) Watch(context.Context) (<-chan store.Event, error) {
	return nil, errors.ErrUnsupported
}

type fakeFolder struct{ f *faultStore }

func (d fakeFolder) Name() string { return "INBOX" }
func (d fakeFolder) Status(context.Context) (store.FolderStatus, error) {
	return store.FolderStatus{UIDValidity: 42}, nil
}

func (d fakeFolder) List(context.Context) ([]store.MessageInfo, error) {
	d.f.mu.Lock()
	defer d.f.mu.Unlock()
	var list []store.MessageInfo
	for uid, b := range d.f.msgs {
		n, _ := io.Copy(io.Discard, store.CRLFReader(bytes.NewReader(b)))
		list = append(list, store.MessageInfo{UID: uid, Size: n, Flags: d.f.flags[uid]})
	}
	slices.SortFunc(list, func(a, b store.MessageInfo) int { return int(a.UID) - int(b.UID) })
	return list, nil
}

type brokenReader struct{ r io.Reader }

func (b *brokenReader) Read(p []byte) (int, error) {
	if b.r == nil {
		return 0, errors.New("disk on fire")
	}
	n, _ := b.r.Read(p[:min(len(p), 3)])
	b.r = nil
	return n, nil
}

func (d fakeFolder) Open(ctx context.Context, uid store.UID) (io.ReadCloser, error) {
	d.f.mu.Lock()
	defer d.f.mu.Unlock()
	if d.f.failOpen != nil {
		return nil, d.f.failOpen
	}
	b, ok := d.f.msgs[uid]
	if !ok {
		return nil, store.ErrNoSuchMessage
	}
	var r io.Reader = store.CRLFReader(bytes.NewReader(b))
	if d.f.breakRead {
		r = &brokenReader{r}
	}
	return io.NopCloser(r), nil
}

func (d fakeFolder) Append(context.Context, io.Reader, []string, time.Time) (store.UID, error) {
	return 0, store.ErrNotPermitted
}

func (d fakeFolder) SetFlags(ctx context.Context, uids []store.UID, op store.FlagOp, flags []string) ([]store.MessageInfo, error) {
	d.f.mu.Lock()
	defer d.f.mu.Unlock()
	for _, u := range uids {
		if _, ok := d.f.msgs[u]; ok {
			d.f.flags[u] = store.ApplyFlags(d.f.flags[u], op, flags)
		}
	}
	return nil, nil
}

func (d fakeFolder) Copy(context.Context, []store.UID, string) (store.CopyResult, error) {
	return store.CopyResult{}, store.ErrNotPermitted
}

func (d fakeFolder) Move(context.Context, []store.UID, string) (store.CopyResult, error) {
	return store.CopyResult{}, store.ErrNotPermitted
}

func (d fakeFolder) Expunge(ctx context.Context, uids []store.UID) ([]store.UID, error) {
	d.f.mu.Lock()
	defer d.f.mu.Unlock()
	if d.f.failExpunge != nil {
		return nil, d.f.failExpunge
	}
	var out []store.UID
	for _, u := range uids {
		if store.HasFlag(d.f.flags[u], store.FlagDeleted) {
			delete(d.f.msgs, u)
			out = append(out, u)
		}
	}
	return out, nil
}
