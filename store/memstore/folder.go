package memstore

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/mailblocks/mailblocks/store"
)

// folderHandle implements store.Folder. It follows its folder through
// renames; once the folder is deleted every method fails with
// ErrNoSuchFolder, even if a folder of the same name is created again
// (that one has another UIDVALIDITY).
type folderHandle struct {
	m *mailboxHandle
	f *folder
}

var _ store.Folder = (*folderHandle)(nil)

// lock locks the mailbox and checks that the folder still exists.
func (h *folderHandle) lock(ctx context.Context) error {
	if err := h.m.lock(ctx); err != nil {
		return err
	}
	if h.f.gone {
		h.m.b.mu.Unlock()
		return fmt.Errorf("memstore: folder %s: %w", h.f.name, store.ErrNoSuchFolder)
	}
	return nil
}

func (h *folderHandle) Name() string {
	h.m.b.mu.Lock()
	defer h.m.b.mu.Unlock()
	return h.f.name
}

func (h *folderHandle) Status(ctx context.Context) (store.FolderStatus, error) {
	if err := h.lock(ctx); err != nil {
		return store.FolderStatus{}, err
	}
	defer h.m.b.mu.Unlock()
	st := store.FolderStatus{UIDValidity: h.f.uidValidity, UIDNext: h.f.uidNext, Messages: len(h.f.msgs)}
	for _, msg := range h.f.msgs {
		if !store.HasFlag(msg.flags, store.FlagSeen) {
			st.Unseen++
		}
		if store.HasFlag(msg.flags, store.FlagDeleted) {
			st.Deleted++
		}
		st.Size += int64(len(msg.body))
	}
	return st, nil
}

func info(msg *message) store.MessageInfo {
	return store.MessageInfo{UID: msg.uid, Flags: msg.flags, InternalDate: msg.date, Size: int64(len(msg.body))}
}

// List implements store.Folder. The Flags slices of the result are shared
// with the store and must not be modified in place.
func (h *folderHandle) List(ctx context.Context) ([]store.MessageInfo, error) {
	if err := h.lock(ctx); err != nil {
		return nil, err
	}
	defer h.m.b.mu.Unlock()
	out := make([]store.MessageInfo, len(h.f.msgs))
	for i, msg := range h.f.msgs {
		out[i] = info(msg)
	}
	return out, nil
}

func (h *folderHandle) Open(ctx context.Context, uid store.UID) (io.ReadCloser, error) {
	if err := h.lock(ctx); err != nil {
		return nil, err
	}
	defer h.m.b.mu.Unlock()
	i := h.f.find(uid)
	if i < 0 {
		return nil, fmt.Errorf("memstore: %s UID %d: %w", h.f.name, uid, store.ErrNoSuchMessage)
	}
	// Bodies are never modified: the reader needs no lock.
	return io.NopCloser(bytes.NewReader(h.f.msgs[i].body)), nil
}

func (h *folderHandle) Append(ctx context.Context, r io.Reader, flags []string, date time.Time) (store.UID, error) {
	nf, err := store.NormalizeFlags(flags)
	if err != nil {
		return 0, err
	}
	q := h.m.s.quota(h.m.b.user)
	body, err := h.m.b.readBody(ctx, r, q)
	if err != nil {
		return 0, err
	}
	if date.IsZero() {
		date = h.m.s.opts.Clock()
	}
	if err := h.lock(ctx); err != nil {
		return 0, err
	}
	defer h.m.b.mu.Unlock()
	return h.m.b.addWithin(q, h.f, body, nf, date)
}

func (h *folderHandle) SetFlags(ctx context.Context, uids []store.UID, op store.FlagOp, flags []string) ([]store.MessageInfo, error) {
	nf, err := store.NormalizeFlags(flags)
	if err != nil {
		return nil, err
	}
	if err := h.lock(ctx); err != nil {
		return nil, err
	}
	defer h.m.b.mu.Unlock()
	var out []store.MessageInfo
	for _, uid := range sortedUnique(uids) {
		i := h.f.find(uid)
		if i < 0 {
			continue
		}
		msg := h.f.msgs[i]
		nflags := slices.Clip(store.ApplyFlags(msg.flags, op, nf))
		if !slices.Equal(nflags, msg.flags) {
			msg.flags = nflags
			h.m.b.notify(store.Event{Kind: store.EventFlagsChanged, Folder: h.f.name, UID: uid, Flags: nflags})
		}
		out = append(out, info(msg))
	}
	return out, nil
}

func sortedUnique(uids []store.UID) []store.UID {
	s := slices.Clone(uids)
	slices.Sort(s)
	return slices.Compact(s)
}

func (h *folderHandle) Copy(ctx context.Context, uids []store.UID, dest string) (store.CopyResult, error) {
	return h.copy(ctx, uids, dest, false)
}

func (h *folderHandle) Move(ctx context.Context, uids []store.UID, dest string) (store.CopyResult, error) {
	return h.copy(ctx, uids, dest, true)
}

// copy copies or moves messages, all or none: the quota is checked for
// the whole set first.
func (h *folderHandle) copy(ctx context.Context, uids []store.UID, dest string, move bool) (store.CopyResult, error) {
	dn, err := folderName(dest)
	if err != nil {
		return store.CopyResult{}, err
	}
	q := h.m.s.quota(h.m.b.user)
	if err := h.lock(ctx); err != nil {
		return store.CopyResult{}, err
	}
	defer h.m.b.mu.Unlock()
	b := h.m.b
	df := b.folders[dn]
	if df == nil {
		return store.CopyResult{}, fmt.Errorf("memstore: copy to %s: %w", dn, store.ErrNoSuchFolder)
	}
	var msgs []*message
	var size int64
	for _, uid := range sortedUnique(uids) {
		if i := h.f.find(uid); i >= 0 {
			msgs = append(msgs, h.f.msgs[i])
			size += int64(len(h.f.msgs[i].body))
		}
	}
	if !move && q.Exceeded(b.bytes, b.msgs, size, int64(len(msgs))) {
		return store.CopyResult{}, store.ErrOverQuota
	}
	res := store.CopyResult{UIDValidity: df.uidValidity}
	for _, msg := range msgs {
		res.Source = append(res.Source, msg.uid)
		res.Dest = append(res.Dest, b.add(df, msg.body, msg.flags, msg.date))
	}
	if move {
		// remove takes back what add counted: usage does not change.
		h.remove(res.Source)
	}
	return res, nil
}

// remove deletes the messages of uids (ascending) from the folder,
// updates usage and notifies. b.mu is held.
func (h *folderHandle) remove(uids []store.UID) {
	if len(uids) == 0 {
		return
	}
	b := h.m.b
	del := make(map[store.UID]bool, len(uids))
	for _, u := range uids {
		del[u] = true
	}
	kept := h.f.msgs[:0:0]
	for _, msg := range h.f.msgs {
		if del[msg.uid] {
			b.bytes -= int64(len(msg.body))
			b.msgs--
			b.notify(store.Event{Kind: store.EventMessageExpunged, Folder: h.f.name, UID: msg.uid})
			continue
		}
		kept = append(kept, msg)
	}
	h.f.msgs = kept
}

func (h *folderHandle) Expunge(ctx context.Context, uids []store.UID) ([]store.UID, error) {
	if err := h.lock(ctx); err != nil {
		return nil, err
	}
	defer h.m.b.mu.Unlock()
	var only map[store.UID]bool
	if uids != nil {
		only = make(map[store.UID]bool, len(uids))
		for _, u := range uids {
			only[u] = true
		}
	}
	var gone []store.UID
	for _, msg := range h.f.msgs {
		if store.HasFlag(msg.flags, store.FlagDeleted) && (only == nil || only[msg.uid]) {
			gone = append(gone, msg.uid)
		}
	}
	h.remove(gone)
	return gone, nil
}
