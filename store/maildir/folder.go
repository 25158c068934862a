package maildir

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mailblocks/mailblocks/store"
)

// entry is one message of a folder.
type entry struct {
	uid  store.UID
	date int64 // internal date, unix seconds
	size int64 // octets with CRLF line endings
	base string
	loc  byte   // 'n' in new/, 'c' in cur/, 0 not (or not yet) seen on disk
	info string // flag letters after ":2,"
	// suffix is the rest of the file name after base: usually "" in new/
	// and ":2,"+info in cur/, but other programs write ":2," into new/
	// (mblaze's mdeliver) or nothing in cur/.
	suffix string
}

// rel is the file's path relative to the folder directory.
func (e *entry) rel() string {
	if e.loc == 'n' {
		return "new/" + e.base + e.suffix
	}
	return "cur/" + e.base + e.suffix
}

// setCur records that the file is now cur/<base>:2,<info>.
func (e *entry) setCur(info string) {
	e.loc, e.info, e.suffix = 'c', info, ":2,"+info
}

// folder is the in-memory state of one folder directory, shared by every
// store.Folder handle of a Store on it. mu serialises users within the
// process; the flock on lockName serialises processes while the index or
// the files change.
type folder struct {
	mb   *mailbox
	name string
	path string

	mu          sync.Mutex
	idxRead     bool
	uidValidity uint32
	uidNext     store.UID
	entries     []*entry // ascending UIDs
	byBase      map[string]*entry
	reuse       map[string]*entry // during a full re-read
	idxStamp    stamp
	idxGen      string // random token of the index file's header
	idxOff      int64  // end of the last complete line
	idxLines    int    // lines in the file, dead ones included
	keywords    []string
	kwStamp     stamp
	scanned     bool
	scanStart   time.Time
	newStamp    stamp
	curStamp    stamp
	tmpCleaned  bool

	flagCache map[string][]string // info letters → flags; reset with keywords

	qmu   sync.Mutex
	queue []*pendingAdd // deliveries waiting for a group commit
}

// A directory modified shortly before (or after) our last scan started
// may have changed again within the same timestamp tick without its mtime
// moving, so it is read again (Dovecot does the same). File systems with
// sub-second timestamps (ext4, xfs, btrfs, tmpfs) stamp with the kernel's
// coarse clock, a few milliseconds per tick: fineWindow covers that with
// a wide margin. A whole-second mtime suggests a file system with
// one- or two-second timestamps: coarseWindow.
const (
	fineWindow   = 100 * time.Millisecond
	coarseWindow = 2 * time.Second
)

func (f *folder) dirty(st stamp) bool {
	w := fineWindow
	if st.mtime%int64(time.Second) == 0 {
		w = coarseWindow
	}
	return st.mtime >= f.scanStart.Add(-w).UnixNano()
}

func (f *folder) exists() error {
	if _, err := os.Stat(filepath.Join(f.path, "cur")); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("maildir: %s: %w", f.name, store.ErrNoSuchFolder)
		}
		return fmt.Errorf("maildir: %w", err)
	}
	return nil
}

// upToDate reports, without taking the lock, whether nothing changed on
// disk since the last sync.
func (f *folder) upToDate() bool {
	if !f.scanned {
		return false
	}
	is, err1 := statStamp(filepath.Join(f.path, indexName))
	ns, err2 := statStamp(filepath.Join(f.path, "new"))
	cs, err3 := statStamp(filepath.Join(f.path, "cur"))
	ks, _ := statStamp(filepath.Join(f.path, keywordsName))
	return err1 == nil && err2 == nil && err3 == nil &&
		is == f.idxStamp && ns == f.newStamp && cs == f.curStamp && ks == f.kwStamp &&
		!f.dirty(ns) && !f.dirty(cs)
}

// lock takes the folder's file lock. f.mu must be held.
func (f *folder) lock() (func(), error) {
	if err := f.exists(); err != nil {
		return nil, err
	}
	return flock(filepath.Join(f.path, lockName))
}

// refresh brings the state up to date with the disk, emitting events for
// what other programs changed. f.mu must be held.
func (f *folder) refresh(ctx context.Context) error {
	if f.upToDate() {
		return nil
	}
	unlock, err := f.lock()
	if err != nil {
		return err
	}
	defer unlock()
	return f.syncLocked(ctx, false)
}

// readIndexLocked reads what was appended to the index, under the file
// lock. f.mu must be held.
func (f *folder) readIndexLocked() error {
	unlock, err := f.lock()
	if err != nil {
		return err
	}
	defer unlock()
	_, err = f.readIndex()
	return err
}

// syncLocked reads the index and, when they changed, the directories, and
// reconciles them. f.mu and the file lock must be held.
func (f *folder) syncLocked(ctx context.Context, force bool) error {
	oldValidity := f.uidValidity
	full, err := f.readIndex()
	if err != nil {
		return err
	}
	if err := f.readKeywords(); err != nil {
		return err
	}
	if oldValidity != 0 && oldValidity != f.uidValidity {
		// Deleted and created again by someone else: everything changed.
		f.mb.s.hub.publish(f.mb.user, store.Event{Kind: store.EventMessageExpunged, Folder: f.name})
	}
	ns, err1 := statStamp(filepath.Join(f.path, "new"))
	cs, err2 := statStamp(filepath.Join(f.path, "cur"))
	if err := errors.Join(err1, err2); err != nil {
		return fmt.Errorf("maildir: %w", err)
	}
	if !force && !full && f.scanned && ns == f.newStamp && cs == f.curStamp && !f.dirty(ns) && !f.dirty(cs) {
		return nil
	}
	// Real time, not Options.Clock: it is compared with file system
	// timestamps.
	start := time.Now()
	listing := make(map[string]diskFile, len(f.entries)+16)
	for _, d := range []byte{'n', 'c'} {
		if err := readDir(f.path, d, listing); err != nil {
			return err
		}
	}
	if err := f.reconcile(ctx, listing); err != nil {
		return err
	}
	f.newStamp, f.curStamp, f.scanStart, f.scanned = ns, cs, start, true
	if !f.tmpCleaned {
		f.tmpCleaned = true
		f.cleanTmp()
	}
	return nil
}

type diskFile struct {
	loc    byte
	info   string
	suffix string
	name   string
}

func readDir(folder string, loc byte, into map[string]diskFile) error {
	sub := "cur"
	if loc == 'n' {
		sub = "new"
	}
	d, err := os.Open(filepath.Join(folder, sub))
	if err != nil {
		return fmt.Errorf("maildir: %w", err)
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("maildir: %w", err)
	}
	for _, n := range names {
		if n == "" || n[0] == '.' || strings.ContainsRune(n, '\n') {
			continue
		}
		base, rest, colon := strings.Cut(n, ":")
		info, ok := strings.CutPrefix(rest, "2,")
		if !ok {
			info = ""
		}
		suffix := ""
		if colon {
			suffix = n[len(base):]
		}
		if _, dup := into[base]; dup && loc == 'n' {
			continue
		}
		into[base] = diskFile{loc: loc, info: info, suffix: suffix, name: n}
	}
	return nil
}

// reconcile matches the directory listing with the index: files without a
// UID get the next ones (in name order, which is delivery order for
// maildir names), entries without a file are expunged, renamed files keep
// their UID. Messages in new/ move to cur/ (as Dovecot does), so that new/
// stays small and cheap to scan. f.mu and the file lock must be held.
func (f *folder) reconcile(ctx context.Context, listing map[string]diskFile) error {
	var events []store.Event
	for _, e := range f.entries {
		d, ok := listing[e.base]
		switch {
		case !ok:
			if e.loc != 0 {
				events = append(events, store.Event{Kind: store.EventMessageExpunged, Folder: f.name, UID: e.uid})
			}
			e.loc = 0
			continue
		case e.loc == 0:
			events = append(events, store.Event{Kind: store.EventMessageAdded, Folder: f.name, UID: e.uid})
		case d.info != e.info:
			e.loc, e.info, e.suffix = d.loc, d.info, d.suffix
			events = append(events, store.Event{Kind: store.EventFlagsChanged, Folder: f.name, UID: e.uid, Flags: f.flags(e)})
		}
		e.loc, e.info, e.suffix = d.loc, d.info, d.suffix
		delete(listing, e.base)
	}
	// What is left are files from other programs.
	foreign := make([]string, 0, len(listing))
	for base := range listing {
		foreign = append(foreign, base)
	}
	sort.Strings(foreign)
	var added []*entry
	for _, base := range foreign {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		d := listing[base]
		e := &entry{base: base, loc: d.loc, info: d.info, suffix: d.suffix}
		if err := f.measure(e); err != nil {
			f.mb.s.log.Warn("maildir: skipping unreadable message", "folder", f.path, "file", d.name, "err", err)
			continue
		}
		e.uid = f.uidNext
		f.uidNext++
		added = append(added, e)
	}
	if err := f.appendIndex(added); err != nil {
		return err
	}
	for _, e := range added {
		f.entries = append(f.entries, e)
		f.byBase[e.base] = e
		events = append(events, store.Event{Kind: store.EventMessageAdded, Folder: f.name, UID: e.uid})
	}
	// Move new/ to cur/, then drop dead entries from memory.
	for _, e := range f.entries {
		if e.loc == 'n' {
			from := filepath.Join(f.path, e.rel())
			if err := os.Rename(from, filepath.Join(f.path, "cur", e.base+":2,"+e.info)); err == nil {
				e.setCur(e.info)
			}
		}
	}
	if err := f.dropDead(); err != nil {
		return err
	}
	if f.scanned {
		// The first scan of a Store only learns the folder; what it
		// finds is not news.
		for _, ev := range events {
			f.mb.s.hub.publish(f.mb.user, ev)
		}
	}
	return nil
}

// measure fills in the internal date (the file's mtime, as Dovecot and
// mutt use it) and the CRLF size (from ",W=" in the name, else counted).
func (f *folder) measure(e *entry) error {
	path := filepath.Join(f.path, e.rel())
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	e.date = fi.ModTime().Unix()
	if w, ok := sizeField(e.base, ",W="); ok {
		e.size = w
		return nil
	}
	fh, err := os.Open(path)
	if err != nil {
		return err
	}
	defer fh.Close()
	e.size, err = virtualSize(fh)
	return err
}

func sizeField(base, key string) (int64, bool) {
	i := strings.Index(base, key)
	if i < 0 {
		return 0, false
	}
	s := base[i+len(key):]
	end := strings.IndexAny(s, ",:")
	if end >= 0 {
		s = s[:end]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n >= 0
}

// cleanTmp removes what interrupted deliveries left in tmp/ long ago.
func (f *folder) cleanTmp() {
	tmp := filepath.Join(f.path, "tmp")
	d, err := os.ReadDir(tmp)
	if err != nil {
		return
	}
	limit := f.mb.s.now().Add(-tmpMaxAge)
	for _, de := range d {
		fi, err := de.Info()
		if err != nil || !fi.ModTime().Before(limit) {
			continue
		}
		os.RemoveAll(filepath.Join(tmp, de.Name()))
	}
}

// System flags and their maildir letters (cr.yp.to/proto/maildir.html),
// in the ASCII order the info part must use.
type flagLetter = struct {
	letter byte
	flag   string
}

var flagLetters = []flagLetter{
	{'D', store.FlagDraft},
	{'F', store.FlagFlagged},
	{'R', store.FlagAnswered},
	{'S', store.FlagSeen},
	{'T', store.FlagDeleted},
}

// flags turns an entry's info letters into store flags, in the order of
// store.NormalizeFlags so that every store reports flags alike. The
// slices are shared between messages with the same letters (callers must
// not modify them, as with store.ApplyFlags results).
func (f *folder) flags(e *entry) []string {
	if e.info == "" {
		return nil
	}
	if fl, ok := f.flagCache[e.info]; ok {
		return fl
	}
	var out []string
	for _, fl := range flagLetters {
		if strings.IndexByte(e.info, fl.letter) >= 0 {
			out = append(out, fl.flag)
		}
	}
	for i := 0; i < len(e.info); i++ {
		c := e.info[i]
		if c >= 'a' && c <= 'z' && int(c-'a') < len(f.keywords) && f.keywords[c-'a'] != "" {
			out = append(out, f.keywords[c-'a'])
		}
	}
	slices.Sort(out)
	if f.flagCache == nil {
		f.flagCache = map[string][]string{}
	}
	if len(f.flagCache) < 1024 {
		f.flagCache[e.info] = out
	}
	return out
}

func (f *folder) info(e *entry) store.MessageInfo {
	return store.MessageInfo{
		UID:          e.uid,
		Flags:        f.flags(e),
		InternalDate: time.Unix(e.date, 0),
		Size:         e.size,
	}
}

func hasLetter(info string, c byte) bool { return strings.IndexByte(info, c) >= 0 }

// virtualSize counts the octets store.CRLFReader makes of r: every LF not
// preceded by CR gains one. It is used for files written by other programs
// that carry no ",W=" size in their name.
func virtualSize(r io.Reader) (int64, error) {
	buf := make([]byte, 32*1024)
	var n int64
	var last byte
	for {
		m, err := r.Read(buf)
		if m > 0 {
			n += int64(m) + lfWithoutCR(last, buf[:m])
			last = buf[m-1]
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return 0, err
		}
	}
}
