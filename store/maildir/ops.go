package maildir

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/mailblocks/mailblocks/internal/ctxio"
	"github.com/mailblocks/mailblocks/store"
)

// handle is a store.Folder: a mailbox and a folder name, resolved to the
// shared folder state on every call, so that a handle on a folder that
// was deleted or renamed meanwhile fails with store.ErrNoSuchFolder.
type handle struct {
	mb   *mailbox
	name string
}

var _ store.Folder = (*handle)(nil)

// Name implements store.Folder.
func (h *handle) Name() string { return h.name }

// locked runs fn on the up-to-date folder state with f.mu held.
func (h *handle) locked(ctx context.Context, fn func(f *folder) error) error {
	f, err := h.mb.folderState(h.name)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.refresh(ctx); err != nil {
		return err
	}
	return fn(f)
}

// Status implements store.Folder.
func (h *handle) Status(ctx context.Context) (store.FolderStatus, error) {
	var st store.FolderStatus
	err := h.locked(ctx, func(f *folder) error {
		st.UIDValidity, st.UIDNext, st.Messages = f.uidValidity, f.uidNext, len(f.entries)
		for _, e := range f.entries {
			if !hasLetter(e.info, 'S') {
				st.Unseen++
			}
			if hasLetter(e.info, 'T') {
				st.Deleted++
			}
			st.Size += e.size
		}
		return nil
	})
	return st, err
}

// List implements store.Folder.
func (h *handle) List(ctx context.Context) ([]store.MessageInfo, error) {
	var out []store.MessageInfo
	err := h.locked(ctx, func(f *folder) error {
		out = make([]store.MessageInfo, len(f.entries))
		for i, e := range f.entries {
			out[i] = f.info(e)
		}
		return nil
	})
	return out, err
}

func (f *folder) find(uid store.UID) *entry {
	i, ok := slices.BinarySearchFunc(f.entries, uid, func(e *entry, u store.UID) int {
		switch {
		case e.uid < u:
			return -1
		case e.uid > u:
			return 1
		}
		return 0
	})
	if !ok {
		return nil
	}
	return f.entries[i]
}

type fileReader struct {
	io.Reader
	f *os.File
}

func (r fileReader) Close() error { return r.f.Close() }

// Open implements store.Folder: the file with LF turned into CRLF. It
// trusts the known location of the file and rescans only when the UID is
// unknown or the file moved (another program changed its flags), so that
// fetching many messages does not list the directory each time.
func (h *handle) Open(ctx context.Context, uid store.UID) (io.ReadCloser, error) {
	f, err := h.mb.folderState(h.name)
	if err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		path, err := f.locate(ctx, uid, attempt > 0)
		if err != nil {
			return nil, err
		}
		fh, err := os.Open(path)
		if err == nil {
			size := int64(-1)
			if fi, err := fh.Stat(); err == nil {
				size = fi.Size()
			}
			return fileReader{store.CRLFReaderSize(fh, size), fh}, nil
		}
		if !errNotExist(err) || attempt > 0 {
			return nil, fmt.Errorf("maildir: open UID %d: %w", uid, err)
		}
	}
}

// locate returns the path of a message's file, scanning first if the UID
// is not known yet, or unconditionally when rescan is set.
func (f *folder) locate(ctx context.Context, uid store.UID, rescan bool) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e := f.find(uid)
	if rescan || e == nil || e.loc == 0 || !f.scanned {
		unlock, err := f.lock()
		if err != nil {
			return "", err
		}
		defer unlock()
		if err := f.syncLocked(ctx, rescan); err != nil {
			return "", err
		}
		e = f.find(uid)
	}
	if e == nil || e.loc == 0 {
		return "", fmt.Errorf("maildir: %s UID %d: %w", f.name, uid, store.ErrNoSuchMessage)
	}
	return filepath.Join(f.path, e.rel()), nil
}

// Append implements store.Folder.
func (h *handle) Append(ctx context.Context, r io.Reader, flags []string, date time.Time) (store.UID, error) {
	f, err := h.mb.folderState(h.name)
	if err != nil {
		return 0, err
	}
	return f.add(ctx, r, flags, date)
}

// SetFlags implements store.Folder by renaming files (maildir flags live
// in the name).
func (h *handle) SetFlags(ctx context.Context, uids []store.UID, op store.FlagOp, flags []string) ([]store.MessageInfo, error) {
	flags, err := store.NormalizeFlags(flags)
	if err != nil {
		return nil, err
	}
	f, err := h.mb.folderState(h.name)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	unlock, err := f.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := f.syncLocked(ctx, false); err != nil {
		return nil, err
	}
	var out []store.MessageInfo
	var events []store.Event
	changed := false
	for _, e := range f.selectUIDs(uids) {
		for attempt := 0; ; attempt++ {
			if e.loc == 0 {
				break // expunged by someone else meanwhile
			}
			nf := store.ApplyFlags(f.flags(e), op, flags)
			info, err := f.makeInfo(nf, e.info)
			if err != nil {
				return out, err
			}
			if info == e.info && e.loc == 'c' {
				out = append(out, f.info(e))
				break
			}
			from := filepath.Join(f.path, e.rel())
			err = os.Rename(from, filepath.Join(f.path, "cur", e.base+":2,"+info))
			if err == nil {
				e.setCur(info)
				changed = true
				mi := f.info(e)
				out = append(out, mi)
				events = append(events, store.Event{Kind: store.EventFlagsChanged, Folder: f.name, UID: e.uid, Flags: mi.Flags})
				break
			}
			if !errNotExist(err) || attempt > 0 {
				return out, fmt.Errorf("maildir: set flags: %w", err)
			}
			if err := f.syncLocked(ctx, true); err != nil {
				return out, err
			}
		}
	}
	if changed {
		if err := f.mb.s.syncDir(filepath.Join(f.path, "cur")); err != nil {
			return out, fmt.Errorf("maildir: %w", err)
		}
	}
	for _, ev := range events {
		f.mb.s.hub.publish(f.mb.user, ev)
	}
	return out, nil
}

// selectUIDs returns the live entries whose UIDs are in uids (all of
// them when uids is nil), ascending.
func (f *folder) selectUIDs(uids []store.UID) []*entry {
	if uids == nil {
		return slices.Clone(f.entries)
	}
	want := make(map[store.UID]bool, len(uids))
	for _, u := range uids {
		want[u] = true
	}
	var out []*entry
	for _, e := range f.entries {
		if want[e.uid] {
			out = append(out, e)
		}
	}
	return out
}

// Expunge implements store.Folder.
func (h *handle) Expunge(ctx context.Context, uids []store.UID) ([]store.UID, error) {
	f, err := h.mb.folderState(h.name)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	unlock, err := f.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := f.syncLocked(ctx, false); err != nil {
		return nil, err
	}
	sel := f.entries
	if uids != nil {
		sel = f.selectUIDs(uids)
	}
	var removed []store.UID
	retry := false
	for _, e := range sel {
		if !hasLetter(e.info, 'T') || e.loc == 0 {
			continue
		}
		err := os.Remove(filepath.Join(f.path, e.rel()))
		if errNotExist(err) {
			retry = true
			continue
		}
		if err != nil {
			return removed, fmt.Errorf("maildir: expunge: %w", err)
		}
		e.loc = 0
		removed = append(removed, e.uid)
	}
	if retry {
		// Some files were renamed by another program meanwhile: rescan
		// and retry those still marked \Deleted.
		if err := f.syncLocked(ctx, true); err != nil {
			return removed, err
		}
		for _, e := range f.selectUIDs(uids) {
			if hasLetter(e.info, 'T') && e.loc != 0 && os.Remove(filepath.Join(f.path, e.rel())) == nil {
				e.loc = 0
				removed = append(removed, e.uid)
			}
		}
		slices.Sort(removed)
	}
	if len(removed) == 0 {
		return nil, nil
	}
	if err := f.mb.s.syncDir(filepath.Join(f.path, "cur")); err != nil {
		return removed, fmt.Errorf("maildir: %w", err)
	}
	if err := f.dropDead(); err != nil {
		return removed, err
	}
	for _, u := range removed {
		f.mb.s.hub.publish(f.mb.user, store.Event{Kind: store.EventMessageExpunged, Folder: f.name, UID: u})
	}
	return removed, nil
}

// dropDead forgets entries whose file is gone and compacts the index when
// dead lines pile up.
func (f *folder) dropDead() error {
	live := f.entries[:0]
	for _, e := range f.entries {
		if e.loc == 0 {
			delete(f.byBase, e.base)
			continue
		}
		live = append(live, e)
	}
	clear(f.entries[len(live):])
	f.entries = live
	if dead := f.idxLines - len(f.entries); dead > 1000 && dead > len(f.entries)/2 {
		return f.rewriteIndex(true)
	}
	return nil
}

// Copy implements store.Folder. Copies are hard links when possible (as
// Dovecot makes them): flags live in the name, so the two stay independent.
func (h *handle) Copy(ctx context.Context, uids []store.UID, dest string) (store.CopyResult, error) {
	return h.transfer(ctx, uids, dest, false)
}

// Move implements store.Folder (RFC 6851): each message is renamed into
// the destination, which is atomic: it is in one folder or the other.
func (h *handle) Move(ctx context.Context, uids []store.UID, dest string) (store.CopyResult, error) {
	return h.transfer(ctx, uids, dest, true)
}

func (h *handle) transfer(ctx context.Context, uids []store.UID, destName string, move bool) (store.CopyResult, error) {
	src, err := h.mb.folderState(h.name)
	if err != nil {
		return store.CopyResult{}, err
	}
	destName, err = checkFolderName(destName)
	if err != nil {
		return store.CopyResult{}, err
	}
	dst, err := h.mb.folderState(destName)
	if err != nil {
		return store.CopyResult{}, err
	}
	var u store.Usage
	q := h.mb.s.quota(h.mb.user)
	if !move && q != (store.Quota{}) {
		unlockMB, err := h.mb.lockMailbox()
		if err != nil {
			return store.CopyResult{}, err
		}
		defer unlockMB()
		if u, err = h.mb.usage(ctx, true); err != nil {
			return store.CopyResult{}, err
		}
	}
	return src.transfer(ctx, uids, dst, move, q, u)
}

// transfer copies or moves messages from f to dst. Both folders are locked,
// in path order so that two transfers in opposite directions (in any
// process) cannot deadlock.
func (f *folder) transfer(ctx context.Context, uids []store.UID, dst *folder, move bool, q store.Quota, u store.Usage) (store.CopyResult, error) {
	first, second := f, dst
	if dst.path < f.path {
		first, second = dst, f
	}
	var unlocks []func()
	defer func() {
		for i := len(unlocks) - 1; i >= 0; i-- {
			unlocks[i]()
		}
	}()
	lockOne := func(g *folder) error {
		g.mu.Lock()
		unlocks = append(unlocks, g.mu.Unlock)
		unlock, err := g.lock()
		if err != nil {
			return err
		}
		unlocks = append(unlocks, unlock)
		return g.syncLocked(ctx, false)
	}
	if err := lockOne(first); err != nil {
		return store.CopyResult{}, err
	}
	if second != first {
		if err := lockOne(second); err != nil {
			return store.CopyResult{}, err
		}
	}
	sel := f.selectUIDs(uids)
	if !move {
		var add int64
		for _, e := range sel {
			add += e.size
		}
		if q.Exceeded(u.Bytes, u.Messages, add, int64(len(sel))) {
			return store.CopyResult{}, fmt.Errorf("maildir: copy: %w", store.ErrOverQuota)
		}
	}
	res := store.CopyResult{UIDValidity: dst.uidValidity}
	var added []*entry
	for _, e := range sel {
		de, err := f.transferOne(ctx, e, dst, move)
		if err != nil {
			if len(added) == 0 {
				return res, err
			}
			// Index what was done before reporting the error.
			f.mb.s.log.Warn("maildir: transfer stopped", "err", err)
			break
		}
		if de == nil {
			continue // vanished
		}
		de.uid = dst.uidNext
		dst.uidNext++
		added = append(added, de)
		res.Source = append(res.Source, e.uid)
		res.Dest = append(res.Dest, de.uid)
	}
	if len(added) == 0 {
		return res, nil
	}
	if err := f.mb.s.syncDir(filepath.Join(dst.path, "cur")); err != nil {
		return res, fmt.Errorf("maildir: %w", err)
	}
	if move && dst != f {
		if err := f.mb.s.syncDir(filepath.Join(f.path, "cur")); err != nil {
			return res, fmt.Errorf("maildir: %w", err)
		}
	}
	if err := dst.appendIndex(added); err != nil {
		return res, err
	}
	for _, de := range added {
		dst.entries = append(dst.entries, de)
		dst.byBase[de.base] = de
		f.mb.s.hub.publish(f.mb.user, store.Event{Kind: store.EventMessageAdded, Folder: dst.name, UID: de.uid})
	}
	if move {
		if err := f.dropDead(); err != nil {
			return res, err
		}
		for _, u := range res.Source {
			f.mb.s.hub.publish(f.mb.user, store.Event{Kind: store.EventMessageExpunged, Folder: f.name, UID: u})
		}
	}
	return res, nil
}

// transferOne links (copy) or renames (move) one message into dst's cur/
// and returns its new entry, without UID; nil if the message vanished.
func (f *folder) transferOne(ctx context.Context, e *entry, dst *folder, move bool) (*entry, error) {
	for attempt := 0; ; attempt++ {
		if e.loc == 0 {
			return nil, nil
		}
		info, err := dst.makeInfo(f.flags(e), e.info)
		if err != nil {
			return nil, err
		}
		base := e.base
		if !move || dst == f {
			// A copy (or a move within the folder) is a new message:
			// it needs its own unique name.
			base = f.mb.s.uniqueName() + sizeSuffix(e)
		}
		from := filepath.Join(f.path, e.rel())
		to := filepath.Join(dst.path, "cur", base+":2,"+info)
		if move {
			err = os.Rename(from, to)
		} else {
			err = os.Link(from, to)
			if err != nil && !errNotExist(err) {
				err = f.mb.s.copyFile(ctx, from, to, dst.path, e.date)
			}
		}
		if err == nil {
			if move {
				e.loc = 0
			}
			de := &entry{date: e.date, size: e.size, base: base}
			de.setCur(info)
			return de, nil
		}
		if !errNotExist(err) || attempt > 0 {
			return nil, fmt.Errorf("maildir: transfer: %w", err)
		}
		if err := f.syncLocked(ctx, true); err != nil {
			return nil, err
		}
	}
}

// sizeSuffix carries the size fields of a base name over to a copy.
func sizeSuffix(e *entry) string {
	var b strings.Builder
	if s, ok := sizeField(e.base, ",S="); ok {
		fmt.Fprintf(&b, ",S=%d", s)
	}
	fmt.Fprintf(&b, ",W=%d", e.size)
	return b.String()
}

// copyFile copies a message when a hard link is impossible (another file
// system, or a file system without links), through dstFolder/tmp/.
func (s *Store) copyFile(ctx context.Context, from, to, dstFolder string, date int64) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := filepath.Join(dstFolder, "tmp", s.uniqueName())
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, ctxio.Reader(ctx, in))
	if err == nil {
		t := time.Unix(date, 0)
		err = os.Chtimes(tmp, t, t)
	}
	if err == nil {
		err = s.sync(out)
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, to)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// moveAll moves every message of f into the folder named to (renaming
// INBOX).
func (f *folder) moveAll(ctx context.Context, to string) (store.CopyResult, error) {
	dst, err := f.mb.folderState(to)
	if err != nil {
		return store.CopyResult{}, err
	}
	return f.transfer(ctx, nil, dst, true, store.Quota{}, store.Usage{})
}
