package maildir

import (
	"bufio"
	"bytes"
	"context"
	"errors"
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

// Messages are stored with LF line endings, the maildir convention that
// mutt, mblaze and Dovecot expect, and handed out with CRLF
// (store.CRLFReader). The CRLF size (RFC 3501 RFC822.SIZE) is counted
// while writing, with the rule CRLFReader applies to what is on disk, and
// put in the file name as ",W=<size>" beside ",S=<size on disk>", as
// Dovecot does, so that List never opens files.

// lfWriter writes to w with every CRLF turned into LF, and counts the
// octets written (disk) and the octets store.CRLFReader gives back
// (virtual).
type lfWriter struct {
	w       *bufio.Writer
	pendCR  bool // a CR held back: dropped if an LF follows
	last    byte // last byte written to disk
	disk    int64
	virtual int64
	err     error
}

func (l *lfWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 && l.err == nil {
		if l.pendCR {
			l.pendCR = false
			if p[0] == '\n' {
				l.emit(p[:1]) // CRLF becomes LF
				p = p[1:]
				continue
			}
			l.emit(cr)
		}
		i := bytes.IndexByte(p, '\r')
		if i < 0 {
			l.emit(p)
			break
		}
		l.emit(p[:i])
		l.pendCR = true
		p = p[i+1:]
	}
	if l.err != nil {
		return 0, l.err
	}
	return n, nil
}

var cr = []byte{'\r'}

// emit writes b to disk and counts it.
func (l *lfWriter) emit(b []byte) {
	if len(b) == 0 || l.err != nil {
		return
	}
	l.virtual += int64(len(b)) + lfWithoutCR(l.last, b)
	l.disk += int64(len(b))
	l.last = b[len(b)-1]
	_, l.err = l.w.Write(b)
}

// lfWithoutCR counts the LFs of b not preceded by CR, prev being the byte
// before b: the CRs store.CRLFReader will insert.
func lfWithoutCR(prev byte, b []byte) int64 {
	var n int64
	off := 0
	for {
		i := bytes.IndexByte(b[off:], '\n')
		if i < 0 {
			return n
		}
		before := prev
		if off+i > 0 {
			before = b[off+i-1]
		}
		if before != '\r' {
			n++
		}
		off += i + 1
	}
}

// Close writes a trailing CR and flushes.
func (l *lfWriter) Close() error {
	if l.pendCR {
		l.pendCR = false
		l.emit(cr)
	}
	if l.err != nil {
		return l.err
	}
	return l.w.Flush()
}

// uniqueName returns a maildir unique name (cr.yp.to/proto/maildir.html,
// in the modern "sec.MusecPpidQn_rand.host" form used by Dovecot): unique
// across processes by pid, within a process by a counter, and across
// hosts sharing the directory by the host name and random bits.
func (s *Store) uniqueName() string {
	now := time.Now()
	return fmt.Sprintf("%d.M%dP%dQ%d_%s.%s", now.Unix(), now.Nanosecond()/1000, s.pid, s.seq.Add(1), randHex(4), s.host)
}

// writeTmp streams r into a new file in dir/tmp/, fsyncs it and returns
// its path and the base name the message will have in new/ or cur/.
func (s *Store) writeTmp(ctx context.Context, dir string, r io.Reader, date time.Time) (tmp, base string, virtual int64, err error) {
	name := s.uniqueName()
	tmp = filepath.Join(dir, "tmp", name)
	fh, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", "", 0, fmt.Errorf("maildir: deliver: %w", err)
	}
	fail := func(err error) (string, string, int64, error) {
		fh.Close()
		os.Remove(tmp)
		return "", "", 0, fmt.Errorf("maildir: deliver: %w", err)
	}
	lw := &lfWriter{w: bufio.NewWriterSize(fh, 64*1024)}
	if _, err := io.Copy(lw, ctxio.Reader(ctx, r)); err != nil {
		return fail(err)
	}
	if err := lw.Close(); err != nil {
		return fail(err)
	}
	// The internal date is the file's mtime, as mutt, mblaze and Dovecot
	// read it; set before the fsync so that it is durable too.
	if err := os.Chtimes(tmp, date, date); err != nil {
		return fail(err)
	}
	if err := s.sync(fh); err != nil {
		return fail(err)
	}
	if err := fh.Close(); err != nil {
		os.Remove(tmp)
		return "", "", 0, fmt.Errorf("maildir: deliver: %w", err)
	}
	return tmp, fmt.Sprintf("%s,S=%d,W=%d", name, lw.disk, lw.virtual), lw.virtual, nil
}

// add delivers one message into the folder (Deliver and Append).
func (f *folder) add(ctx context.Context, r io.Reader, flags []string, date time.Time) (store.UID, error) {
	flags, err := store.NormalizeFlags(flags)
	if err != nil {
		return 0, err
	}
	if date.IsZero() {
		date = f.mb.s.now()
	}
	if err := f.exists(); err != nil {
		return 0, err
	}
	tmp, base, size, err := f.mb.s.writeTmp(ctx, f.path, r, date)
	if err != nil {
		return 0, err
	}
	committed := false
	defer func() {
		if !committed {
			os.Remove(tmp)
		}
	}()
	// With a quota, the check and the commit happen under the mailbox
	// lock, so that concurrent deliveries (in this process or another)
	// cannot both pass the check.
	if q := f.mb.s.quota(f.mb.user); q != (store.Quota{}) {
		unlockMB, err := f.mb.lockMailbox()
		if err != nil {
			return 0, err
		}
		defer unlockMB()
		u, err := f.mb.usage(ctx, false)
		if err == nil && q.Exceeded(u.Bytes, u.Messages, size, 1) {
			// The cheap count may include messages another process
			// expunged: recount exactly before refusing.
			u, err = f.mb.usage(ctx, true)
		}
		if err != nil {
			return 0, err
		}
		if q.Exceeded(u.Bytes, u.Messages, size, 1) {
			return 0, fmt.Errorf("maildir: deliver to %s: %w", f.mb.user, store.ErrOverQuota)
		}
	}
	e := &entry{date: date.Unix(), size: size, base: base}
	if len(flags) == 0 {
		// The common case: into new/, outside the folder lock so that
		// concurrent deliveries overlap their fsyncs. Another process
		// may index the file before we do; then we take its UID.
		if err := os.Rename(tmp, filepath.Join(f.path, "new", base)); err != nil {
			return 0, fmt.Errorf("maildir: deliver: %w", err)
		}
		committed = true
		if err := f.mb.s.syncDir(filepath.Join(f.path, "new")); err != nil {
			return 0, fmt.Errorf("maildir: deliver: %w", err)
		}
		e.loc = 'n'
		return f.commitGroup(e)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	unlock, err := f.lock()
	if err != nil {
		return 0, err
	}
	defer unlock()
	if _, err := f.readIndex(); err != nil {
		return 0, err
	}
	if err := f.readKeywords(); err != nil {
		return 0, err
	}
	info, err := f.makeInfo(flags, "")
	if err != nil {
		return 0, err
	}
	if err := os.Rename(tmp, filepath.Join(f.path, "cur", base+":2,"+info)); err != nil {
		return 0, fmt.Errorf("maildir: deliver: %w", err)
	}
	committed = true
	if err := f.mb.s.syncDir(filepath.Join(f.path, "cur")); err != nil {
		return 0, fmt.Errorf("maildir: deliver: %w", err)
	}
	e.setCur(info)
	if err := f.indexNew([]*entry{e}); err != nil {
		return 0, err
	}
	return e.uid, nil
}

// pendingAdd is a delivery waiting for its UID.
type pendingAdd struct {
	e    *entry
	err  error
	done bool // guarded by folder.mu
}

// commitGroup gives a UID to a message already in new/. Deliveries that
// arrive while another one holds the folder lock queue up, and the next
// to get the lock indexes them all with one write and one fsync (group
// commit), so concurrent deliveries share the cost of the index fsync.
func (f *folder) commitGroup(e *entry) (store.UID, error) {
	p := &pendingAdd{e: e}
	f.qmu.Lock()
	f.queue = append(f.queue, p)
	f.qmu.Unlock()
	f.mu.Lock()
	defer f.mu.Unlock()
	if p.done {
		return p.e.uid, p.err
	}
	f.qmu.Lock()
	batch := f.queue
	f.queue = nil
	f.qmu.Unlock()
	err := func() error {
		unlock, err := f.lock()
		if err != nil {
			return err
		}
		defer unlock()
		if _, err := f.readIndex(); err != nil {
			return err
		}
		es := make([]*entry, len(batch))
		for i, q := range batch {
			es[i] = q.e
		}
		return f.indexNew(es)
	}()
	for _, q := range batch {
		q.err, q.done = err, true
	}
	return p.e.uid, p.err
}

// indexNew gives UIDs to messages whose files are in place, unless a scan
// (of this or another process) indexed them first. The folder lock must
// be held and the index read.
func (f *folder) indexNew(es []*entry) error {
	var fresh []*entry
	for _, e := range es {
		if known := f.byBase[e.base]; known != nil {
			e.uid = known.uid
			continue
		}
		e.uid = f.uidNext
		f.uidNext++
		fresh = append(fresh, e)
	}
	if err := f.appendIndex(fresh); err != nil {
		return err
	}
	for _, e := range fresh {
		f.entries = append(f.entries, e)
		f.byBase[e.base] = e
		f.mb.s.hub.publish(f.mb.user, store.Event{Kind: store.EventMessageAdded, Folder: f.name, UID: e.uid})
	}
	return nil
}

// makeInfo returns the maildir info letters (after ":2,") for flags:
// system flag letters, then keyword letters, in ASCII order as the
// maildir spec asks. Letters of old that mailblocks does not manage (for
// example P, "passed") are kept. Keywords get a letter in dovecot-keywords
// if they have none; the folder lock must be held.
func (f *folder) makeInfo(flags []string, old string) (string, error) {
	var letters []byte
	for i := 0; i < len(old); i++ {
		c := old[i]
		if c >= 'A' && c <= 'Z' && !slices.ContainsFunc(flagLetters, func(fl flagLetter) bool { return fl.letter == c }) {
			letters = append(letters, c)
		}
	}
	for _, fl := range flags {
		if strings.HasPrefix(fl, `\`) {
			for _, sl := range flagLetters {
				if strings.EqualFold(sl.flag, fl) {
					letters = append(letters, sl.letter)
				}
			}
			continue
		}
		c, err := f.keywordLetter(fl, true)
		if err != nil {
			return "", err
		}
		letters = append(letters, c)
	}
	slices.Sort(letters)
	return string(slices.Compact(letters)), nil
}

// errNotExist reports a file that vanished, typically renamed by another
// program changing flags: the caller rescans and retries once.
func errNotExist(err error) bool { return errors.Is(err, os.ErrNotExist) }
