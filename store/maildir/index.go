package maildir

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mailblocks/mailblocks/store"
)

// The per-folder index, "mailblocks-uidlist", gives every message its UID
// (RFC 3501 2.3.1.1) and remembers what List needs without opening files:
//
//	mailblocks-uidlist 1 <uidvalidity> <uidnext> <generation>
//	<uid> <internal date, unix seconds> <CRLF size> <base name>
//	...
//
// The base name is the maildir file name before ":", so a message keeps its
// UID when another program renames it to change its flags or moves it from
// new/ to cur/. Lines are appended under the folder lock, in ascending UID
// order; a line whose file is gone is an expunged message. The file is
// rewritten compactly (temp file, fsync, rename) when dead lines pile up,
// and uidnext in the header keeps UIDs from being reused after the highest
// ones were expunged. A torn last line (crash mid-append) is ignored and
// truncated away by the next writer.

const (
	indexName    = "mailblocks-uidlist"
	indexMagic   = "mailblocks-uidlist 1 "
	keywordsName = "dovecot-keywords"
	lockName     = "mailblocks-folder.lock"
)

// stamp identifies a version of a file or directory cheaply.
type stamp struct {
	ino   uint64
	size  int64
	mtime int64 // nanoseconds
}

func stampOf(fi os.FileInfo) stamp {
	return stamp{ino: inode(fi), size: fi.Size(), mtime: fi.ModTime().UnixNano()}
}

func statStamp(path string) (stamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return stamp{}, err
	}
	return stampOf(fi), nil
}

// readIndex brings the in-memory index up to date with the file, reading
// only what was appended when it can. It creates the index of a folder that
// has none (a maildir made by another program). Called with the folder
// lock held. full reports whether the whole file was (re)read.
func (f *folder) readIndex() (full bool, err error) {
	path := filepath.Join(f.path, indexName)
	st, err := statStamp(path)
	if errors.Is(err, os.ErrNotExist) {
		if err := f.createIndex(); err != nil {
			return false, err
		}
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("maildir: %w", err)
	}
	if f.idxRead && st == f.idxStamp {
		return false, nil
	}
	fh, err := os.Open(path)
	if err != nil {
		return false, fmt.Errorf("maildir: %w", err)
	}
	defer fh.Close()
	if f.idxRead && st.ino == f.idxStamp.ino && st.size >= f.idxOff && f.sameGeneration(fh) {
		// Appended by another writer: parse the new lines only.
		if _, err := fh.Seek(f.idxOff, io.SeekStart); err != nil {
			return false, fmt.Errorf("maildir: %w", err)
		}
		if err := f.parseLines(bufio.NewReaderSize(fh, 64*1024), f.idxOff); err != nil {
			return false, err
		}
		f.idxStamp = st
		return false, nil
	}
	// New or rewritten file: read it all, reusing the entries we know so
	// that their location and flags (and the events derived from them)
	// carry over.
	br := bufio.NewReaderSize(fh, 64*1024)
	head, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(head, indexMagic) {
		return false, fmt.Errorf("maildir: %s: bad header", path)
	}
	fields := strings.Fields(head[len(indexMagic):])
	if len(fields) < 2 {
		return false, fmt.Errorf("maildir: %s: bad header", path)
	}
	v, err1 := strconv.ParseUint(fields[0], 10, 32)
	n, err2 := strconv.ParseUint(fields[1], 10, 32)
	if err1 != nil || err2 != nil || v == 0 || n == 0 {
		return false, fmt.Errorf("maildir: %s: bad header", path)
	}
	f.idxGen = ""
	if len(fields) > 2 {
		f.idxGen = fields[2]
	}
	old := f.byBase
	if uint32(v) != f.uidValidity {
		old = nil
	}
	f.uidValidity = uint32(v)
	f.uidNext = store.UID(n)
	f.entries = f.entries[:0]
	f.byBase = make(map[string]*entry, max(len(old), int(st.size/64)))
	f.idxLines = 0
	f.reuse = old
	err = f.parseLines(br, int64(len(head)))
	f.reuse = nil
	if err != nil {
		return false, err
	}
	if !slices.IsSortedFunc(f.entries, func(a, b *entry) int { return int(a.uid) - int(b.uid) }) {
		slices.SortFunc(f.entries, func(a, b *entry) int { return int(a.uid) - int(b.uid) })
	}
	f.idxStamp = st
	f.idxRead = true
	return true, nil
}

// sameGeneration reports whether the open index is the file we read
// before: every rewrite writes a new random generation into the header,
// because a rewritten file may get the inode number of an older one back.
func (f *folder) sameGeneration(fh *os.File) bool {
	var buf [128]byte
	n, _ := fh.ReadAt(buf[:], 0)
	head, _, ok := strings.Cut(string(buf[:n]), "\n")
	if !ok || !strings.HasPrefix(head, indexMagic) {
		return false
	}
	fields := strings.Fields(head[len(indexMagic):])
	return len(fields) > 2 && fields[2] == f.idxGen
}

// parseLines reads index lines from r, which starts at offset off.
func (f *folder) parseLines(r *bufio.Reader, off int64) error {
	for {
		line, err := r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			return fmt.Errorf("maildir: %s: line too long", f.path)
		}
		if err != nil {
			// EOF, possibly after a torn line that we leave for the next
			// writer to truncate.
			f.idxOff = off
			return nil
		}
		off += int64(len(line))
		f.idxLines++
		e, ok := parseEntry(line[:len(line)-1])
		if !ok {
			continue
		}
		if e.uid >= f.uidNext {
			f.uidNext = e.uid + 1
		}
		if _, dup := f.byBase[e.base]; dup {
			continue
		}
		if o := f.reuse[e.base]; o != nil && o.uid == e.uid {
			e = o
		}
		f.entries = append(f.entries, e)
		f.byBase[e.base] = e
	}
}

func parseEntry(line []byte) (*entry, bool) {
	var nums [3]int64
	for i := range nums {
		sp := bytes.IndexByte(line, ' ')
		if sp <= 0 {
			return nil, false
		}
		v, ok := parseInt(line[:sp])
		if !ok {
			return nil, false
		}
		nums[i] = v
		line = line[sp+1:]
	}
	if len(line) == 0 || nums[0] <= 0 || nums[0] > 1<<32-1 {
		return nil, false
	}
	return &entry{uid: store.UID(nums[0]), date: nums[1], size: nums[2], base: string(line)}, true
}

// parseInt parses an optionally negative decimal without allocating
// (the index has 100,000 lines for a big folder).
func parseInt(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var v int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	if neg {
		v = -v
	}
	return v, true
}

func appendEntry(b []byte, e *entry) []byte {
	b = strconv.AppendUint(b, uint64(e.uid), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, e.date, 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, e.size, 10)
	b = append(b, ' ')
	b = append(b, e.base...)
	return append(b, '\n')
}

// createIndex starts the index of a folder with a fresh UIDVALIDITY.
func (f *folder) createIndex() error {
	v, err := f.mb.nextUIDValidity()
	if err != nil {
		return err
	}
	f.uidValidity = v
	f.uidNext = 1
	f.entries = f.entries[:0]
	f.byBase = map[string]*entry{}
	return f.rewriteIndex(false)
}

// rewriteIndex writes the index afresh with the live entries (all entries
// when live is false), atomically.
func (f *folder) rewriteIndex(liveOnly bool) error {
	var b []byte
	gen := randHex(8)
	b = fmt.Appendf(b, "%s%d %d %s\n", indexMagic, f.uidValidity, f.uidNext, gen)
	lines := 0
	for _, e := range f.entries {
		if liveOnly && e.loc == 0 {
			continue
		}
		b = appendEntry(b, e)
		lines++
	}
	path := filepath.Join(f.path, indexName)
	if err := f.mb.s.writeFileAtomic(path, b); err != nil {
		return err
	}
	st, err := statStamp(path)
	if err != nil {
		return fmt.Errorf("maildir: %w", err)
	}
	f.idxStamp, f.idxOff, f.idxLines, f.idxRead, f.idxGen = st, int64(len(b)), lines, true, gen
	return nil
}

// appendIndex adds entries (with UIDs already assigned, ascending) to the
// index file. Called with the folder lock held, after readIndex.
func (f *folder) appendIndex(es []*entry) error {
	if len(es) == 0 {
		return nil
	}
	path := filepath.Join(f.path, indexName)
	fh, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("maildir: %w", err)
	}
	defer fh.Close()
	if f.idxStamp.size != f.idxOff {
		// Drop a torn line left by a crash.
		if err := fh.Truncate(f.idxOff); err != nil {
			return fmt.Errorf("maildir: %w", err)
		}
	}
	var b []byte
	for _, e := range es {
		b = appendEntry(b, e)
	}
	if _, err := fh.WriteAt(b, f.idxOff); err != nil {
		return fmt.Errorf("maildir: append index: %w", err)
	}
	if err := f.mb.s.sync(fh); err != nil {
		return fmt.Errorf("maildir: append index: %w", err)
	}
	fi, err := fh.Stat()
	if err != nil {
		return fmt.Errorf("maildir: %w", err)
	}
	f.idxStamp = stampOf(fi)
	f.idxOff += int64(len(b))
	f.idxLines += len(es)
	return nil
}

// readKeywords loads dovecot-keywords: "<n> <keyword>" lines, n being the
// position of the letter ('a'+n) that stands for the keyword in file
// names. Dovecot reads and writes the same file, so keywords set by either
// program keep their meaning.
func (f *folder) readKeywords() error {
	path := filepath.Join(f.path, keywordsName)
	st, err := statStamp(path)
	if errors.Is(err, os.ErrNotExist) {
		if f.keywords != nil {
			f.keywords, f.kwStamp, f.flagCache = nil, stamp{}, nil
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("maildir: %w", err)
	}
	if st == f.kwStamp {
		return nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("maildir: %w", err)
	}
	kw := make([]string, 26)
	used := 0
	for _, line := range strings.Split(string(data), "\n") {
		n, name, ok := strings.Cut(line, " ")
		i, err := strconv.Atoi(n)
		if !ok || err != nil || i < 0 || i >= 26 || name == "" {
			continue
		}
		kw[i] = name
		used = max(used, i+1)
	}
	f.keywords, f.kwStamp, f.flagCache = kw[:used], st, nil
	return nil
}

// keywordLetter returns the letter of keyword kw, allocating one (and
// rewriting dovecot-keywords) when create is set. Called with the folder
// lock held.
func (f *folder) keywordLetter(kw string, create bool) (byte, error) {
	for i, k := range f.keywords {
		if k != "" && strings.EqualFold(k, kw) {
			return byte('a' + i), nil
		}
	}
	if !create {
		return 0, nil
	}
	if len(f.keywords) >= 26 {
		return 0, fmt.Errorf("maildir: folder %s: more than 26 keywords: %w", f.name, ErrTooManyKeywords)
	}
	f.keywords = append(f.keywords, kw)
	f.flagCache = nil
	var b strings.Builder
	for i, k := range f.keywords {
		if k != "" {
			fmt.Fprintf(&b, "%d %s\n", i, k)
		}
	}
	path := filepath.Join(f.path, keywordsName)
	if err := f.mb.s.writeFileAtomic(path, []byte(b.String())); err != nil {
		return 0, err
	}
	st, err := statStamp(path)
	if err != nil {
		return 0, fmt.Errorf("maildir: %w", err)
	}
	f.kwStamp = st
	return byte('a' + len(f.keywords) - 1), nil
}

// uidValidityName is the per-mailbox counter that makes every new folder's
// UIDVALIDITY larger than any before it, even for a folder deleted and
// created again within one second (RFC 3501 2.3.1.1).
const uidValidityName = "mailblocks-uidvalidity"

func (mb *mailbox) nextUIDValidity() (uint32, error) {
	path := filepath.Join(mb.root, uidValidityName)
	unlock, err := flock(path + ".lock")
	if err != nil {
		return 0, err
	}
	defer unlock()
	var last uint64
	if data, err := os.ReadFile(path); err == nil {
		last, _ = strconv.ParseUint(strings.TrimSpace(string(data)), 10, 32)
	}
	v := uint64(mb.s.now().Unix())
	if v <= last {
		v = last + 1
	}
	if v > 1<<32-1 {
		v = 1
	}
	if err := mb.s.writeFileAtomic(path, []byte(strconv.FormatUint(v, 10)+"\n")); err != nil {
		return 0, err
	}
	return uint32(v), nil
}

// tmpMaxAge: the maildir spec (cr.yp.to/proto/maildir.html) says a file
// in tmp/ untouched for 36 hours is garbage from an interrupted delivery.
const tmpMaxAge = 36 * time.Hour
