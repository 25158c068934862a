package imapbackend

// A throw-away in-memory store used until store/memstore lands.

import (
	"bytes"
	"context"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mailblocks/mailblocks/store"
)

type fakeStore struct {
	mu    sync.Mutex
	pass  map[string]string
	boxes map[string]*fakeMailbox
	quota int64
}

func newFakeStore() *fakeStore {
	return &fakeStore{pass: map[string]string{}, boxes: map[string]*fakeMailbox{}}
}

func (st *fakeStore) addUser(user, pw string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.pass[user] = pw
	mb := &fakeMailbox{st: st, user: user, folders: map[string]*fakeFolder{}}
	for _, d := range store.DefaultFolders {
		mb.folders[d.Name] = &fakeFolder{mb: mb, name: d.Name, use: d.Use, uidValidity: 1, uidNext: 1, subscribed: true}
	}
	st.boxes[user] = mb
}

func (st *fakeStore) Authenticate(ctx context.Context, username, password string) (string, error) {
	if !strings.Contains(username, "@") {
		username += "@example.org"
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if pw, ok := st.pass[username]; ok && pw == password {
		return username, nil
	}
	return "", store.ErrAuthFailed
}

func (st *fakeStore) Mailbox(ctx context.Context, user string) (store.Mailbox, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	mb, ok := st.boxes[user]
	if !ok {
		return nil, store.ErrNoSuchUser
	}
	return mb, nil
}

func (st *fakeStore) Deliver(ctx context.Context, user string, r io.Reader, opts store.DeliverOptions) (store.UID, error) {
	mb, err := st.Mailbox(ctx, user)
	if err != nil {
		return 0, err
	}
	name := opts.Folder
	if name == "" {
		name = "INBOX"
	}
	f, err := mb.Folder(ctx, name)
	if err != nil {
		return 0, err
	}
	return f.Append(ctx, r, opts.Flags, opts.Date)
}

type fakeMailbox struct {
	st       *fakeStore
	user     string
	folders  map[string]*fakeFolder
	watchers []chan store.Event
}

type fakeMsg struct {
	uid   store.UID
	flags []string
	date  time.Time
	data  []byte
}

type fakeFolder struct {
	mb          *fakeMailbox
	name        string
	use         store.SpecialUse
	subscribed  bool
	uidValidity uint32
	uidNext     store.UID
	msgs        []*fakeMsg
}

func (mb *fakeMailbox) notify(ev store.Event) {
	for _, w := range mb.watchers {
		select {
		case w <- ev:
		default:
		}
	}
}

func (mb *fakeMailbox) User() string { return mb.user }

func (mb *fakeMailbox) Folders(ctx context.Context) ([]store.FolderInfo, error) {
	mb.st.mu.Lock()
	defer mb.st.mu.Unlock()
	var out []store.FolderInfo
	for _, f := range mb.folders {
		out = append(out, store.FolderInfo{Name: f.name, SpecialUse: f.use, Subscribed: f.subscribed})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (mb *fakeMailbox) CreateFolder(ctx context.Context, name string, use store.SpecialUse) error {
	if err := store.ValidateFolderName(name); err != nil {
		return err
	}
	mb.st.mu.Lock()
	defer mb.st.mu.Unlock()
	if _, ok := mb.folders[name]; ok {
		return store.ErrFolderExists
	}
	parts := strings.Split(name, "/")
	for i := 1; i <= len(parts); i++ {
		n := strings.Join(parts[:i], "/")
		if _, ok := mb.folders[n]; !ok {
			mb.folders[n] = &fakeFolder{mb: mb, name: n, uidValidity: uint32(time.Now().UnixNano() & 0xffffff), uidNext: 1}
		}
	}
	mb.folders[name].use = use
	return nil
}

func (mb *fakeMailbox) DeleteFolder(ctx context.Context, name string) error {
	mb.st.mu.Lock()
	defer mb.st.mu.Unlock()
	if name == "INBOX" {
		return store.ErrNotPermitted
	}
	if _, ok := mb.folders[name]; !ok {
		return store.ErrNoSuchFolder
	}
	delete(mb.folders, name)
	mb.notify(store.Event{Kind: store.EventFolderDeleted, Folder: name})
	return nil
}

func (mb *fakeMailbox) RenameFolder(ctx context.Context, from, to string) error {
	if err := store.ValidateFolderName(to); err != nil {
		return err
	}
	mb.st.mu.Lock()
	defer mb.st.mu.Unlock()
	f, ok := mb.folders[from]
	if !ok {
		return store.ErrNoSuchFolder
	}
	if _, ok := mb.folders[to]; ok {
		return store.ErrFolderExists
	}
	for n, c := range mb.folders {
		if n == from || strings.HasPrefix(n, from+"/") {
			delete(mb.folders, n)
			c.name = to + strings.TrimPrefix(n, from)
			mb.folders[c.name] = c
		}
	}
	_ = f
	return nil
}

func (mb *fakeMailbox) SetSubscribed(ctx context.Context, name string, on bool) error {
	mb.st.mu.Lock()
	defer mb.st.mu.Unlock()
	f, ok := mb.folders[name]
	if !ok {
		return store.ErrNoSuchFolder
	}
	f.subscribed = on
	return nil
}

func (mb *fakeMailbox) Folder(ctx context.Context, name string) (store.Folder, error) {
	mb.st.mu.Lock()
	defer mb.st.mu.Unlock()
	f, ok := mb.folders[name]
	if !ok {
		return nil, store.ErrNoSuchFolder
	}
	return f, nil
}

func (mb *fakeMailbox) Usage(ctx context.Context) (store.Usage, error) { return store.Usage{}, nil }

func (mb *fakeMailbox) Watch(ctx context.Context) (<-chan store.Event, error) {
	ch := make(chan store.Event, 16)
	mb.st.mu.Lock()
	mb.watchers = append(mb.watchers, ch)
	mb.st.mu.Unlock()
	go func() {
		<-ctx.Done()
		mb.st.mu.Lock()
		for i, w := range mb.watchers {
			if w == ch {
				mb.watchers = append(mb.watchers[:i], mb.watchers[i+1:]...)
				break
			}
		}
		close(ch)
		mb.st.mu.Unlock()
	}()
	return ch, nil
}

func (f *fakeFolder) Name() string { return f.name }

func (f *fakeFolder) Status(ctx context.Context) (store.FolderStatus, error) {
	f.mb.st.mu.Lock()
	defer f.mb.st.mu.Unlock()
	st := store.FolderStatus{UIDValidity: f.uidValidity, UIDNext: f.uidNext, Messages: len(f.msgs)}
	for _, m := range f.msgs {
		if !store.HasFlag(m.flags, store.FlagSeen) {
			st.Unseen++
		}
		if store.HasFlag(m.flags, store.FlagDeleted) {
			st.Deleted++
		}
		st.Size += int64(len(m.data))
	}
	return st, nil
}

func (f *fakeFolder) List(ctx context.Context) ([]store.MessageInfo, error) {
	f.mb.st.mu.Lock()
	defer f.mb.st.mu.Unlock()
	if f.mb.folders[f.name] != f {
		return nil, store.ErrNoSuchFolder
	}
	out := make([]store.MessageInfo, len(f.msgs))
	for i, m := range f.msgs {
		out[i] = store.MessageInfo{UID: m.uid, Flags: m.flags, InternalDate: m.date, Size: int64(len(m.data))}
	}
	return out, nil
}

func (f *fakeFolder) find(uid store.UID) *fakeMsg {
	for _, m := range f.msgs {
		if m.uid == uid {
			return m
		}
	}
	return nil
}

func (f *fakeFolder) Open(ctx context.Context, uid store.UID) (io.ReadCloser, error) {
	f.mb.st.mu.Lock()
	defer f.mb.st.mu.Unlock()
	m := f.find(uid)
	if m == nil {
		return nil, store.ErrNoSuchMessage
	}
	return io.NopCloser(bytes.NewReader(m.data)), nil
}

func (f *fakeFolder) Append(ctx context.Context, r io.Reader, flags []string, date time.Time) (store.UID, error) {
	b, err := io.ReadAll(store.CRLFReader(r))
	if err != nil {
		return 0, err
	}
	flags, err = store.NormalizeFlags(flags)
	if err != nil {
		return 0, err
	}
	if date.IsZero() {
		date = time.Now()
	}
	f.mb.st.mu.Lock()
	defer f.mb.st.mu.Unlock()
	if q := f.mb.st.quota; q > 0 && int64(len(b)) > q {
		return 0, store.ErrOverQuota
	}
	uid := f.uidNext
	f.uidNext++
	f.msgs = append(f.msgs, &fakeMsg{uid: uid, flags: flags, date: date, data: b})
	f.mb.notify(store.Event{Kind: store.EventMessageAdded, Folder: f.name, UID: uid})
	return uid, nil
}

func (f *fakeFolder) SetFlags(ctx context.Context, uids []store.UID, op store.FlagOp, flags []string) ([]store.MessageInfo, error) {
	flags, err := store.NormalizeFlags(flags)
	if err != nil {
		return nil, err
	}
	f.mb.st.mu.Lock()
	defer f.mb.st.mu.Unlock()
	var out []store.MessageInfo
	for _, u := range uids {
		m := f.find(u)
		if m == nil {
			continue
		}
		m.flags = store.ApplyFlags(m.flags, op, flags)
		out = append(out, store.MessageInfo{UID: m.uid, Flags: m.flags, InternalDate: m.date, Size: int64(len(m.data))})
		f.mb.notify(store.Event{Kind: store.EventFlagsChanged, Folder: f.name, UID: u, Flags: m.flags})
	}
	return out, nil
}

func (f *fakeFolder) copy(uids []store.UID, dest string, move bool) (store.CopyResult, error) {
	f.mb.st.mu.Lock()
	defer f.mb.st.mu.Unlock()
	d, ok := f.mb.folders[dest]
	if !ok {
		return store.CopyResult{}, store.ErrNoSuchFolder
	}
	res := store.CopyResult{UIDValidity: d.uidValidity}
	for _, u := range uids {
		m := f.find(u)
		if m == nil {
			continue
		}
		nm := *m
		nm.uid = d.uidNext
		d.uidNext++
		d.msgs = append(d.msgs, &nm)
		res.Source = append(res.Source, u)
		res.Dest = append(res.Dest, nm.uid)
		f.mb.notify(store.Event{Kind: store.EventMessageAdded, Folder: d.name, UID: nm.uid})
	}
	if move {
		kept := f.msgs[:0]
		for _, m := range f.msgs {
			if m.uid != 0 && contains(res.Source, m.uid) {
				f.mb.notify(store.Event{Kind: store.EventMessageExpunged, Folder: f.name, UID: m.uid})
				continue
			}
			kept = append(kept, m)
		}
		f.msgs = kept
	}
	return res, nil
}

func contains(uids []store.UID, u store.UID) bool {
	for _, x := range uids {
		if x == u {
			return true
		}
	}
	return false
}

func (f *fakeFolder) Copy(ctx context.Context, uids []store.UID, dest string) (store.CopyResult, error) {
	return f.copy(uids, dest, false)
}

func (f *fakeFolder) Move(ctx context.Context, uids []store.UID, dest string) (store.CopyResult, error) {
	return f.copy(uids, dest, true)
}

func (f *fakeFolder) Expunge(ctx context.Context, uids []store.UID) ([]store.UID, error) {
	f.mb.st.mu.Lock()
	defer f.mb.st.mu.Unlock()
	var removed []store.UID
	kept := f.msgs[:0]
	for _, m := range f.msgs {
		if store.HasFlag(m.flags, store.FlagDeleted) && (uids == nil || contains(uids, m.uid)) {
			removed = append(removed, m.uid)
			f.mb.notify(store.Event{Kind: store.EventMessageExpunged, Folder: f.name, UID: m.uid})
			continue
		}
		kept = append(kept, m)
	}
	f.msgs = kept
	return removed, nil
}
