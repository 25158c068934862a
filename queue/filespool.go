package queue

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/mailblocks/mailblocks/internal/ctxio"
)

// On-disk layout of a file spool rooted at dir:
//
//	dir/tmp/          files being written; anything here at Open is a
//	                  half-written message or state and is deleted
//	dir/msg/<id>      one committed message: body, then the initial record
//	                  as JSON, then a fixed-size trailer giving the JSON's
//	                  length ("\n%012d mbq1\n")
//	dir/msg/<id>.st   the latest record (progress) as JSON, when the
//	                  message has made progress since it was queued
//	dir/quarantine/   files that could not be parsed at Open, kept for a
//	                  human to look at
//
// The record sits after the body because its size is only known once the
// body is streamed in; the trailer makes a truncated file detectable (it no
// longer ends with a valid trailer).
//
// Enqueue is durable in two steps. The producer writes the message to
// dir/tmp and fsyncs it itself: concurrent fsyncs of different files are
// merged into one journal commit by the filesystem, so producers do not wait
// for each other. It then hands the file to the committer goroutine, which
// takes every file waiting at that moment, renames them into dir/msg and
// fsyncs dir/msg once for the whole batch (group commit) before waking all
// their producers. A message is committed when its rename is durable; a
// crash before that leaves a file in dir/tmp, which Open deletes, so nothing
// half-written is ever delivered.
//
// Progress (the .st file) is written to dir/tmp, fsynced, and handed to the
// same committer, which renames it over the previous one and fsyncs dir/msg
// with the batch. Without the directory fsync the rename may not survive a
// crash and an older state come back: recipients delivered since would be
// tried again, and, worse, a notice handed over since would be sent again
// while one whose hand-off failed could lose its retry count and so its
// expiry. Sharing the committer's fsync keeps the cost to one directory
// fsync per batch of enqueues and updates. A message is removed by deleting
// the message file first and then the state file, so that a crash in
// between leaves an orphan state file, which Open deletes.
const (
	trailerLen   = 19 // len("\n%012d mbq1\n")
	trailerMagic = " mbq1\n"
	stateSuffix  = ".st"
	// maxRecordLen bounds the record JSON read from a file, so that a
	// corrupt trailer cannot make Open allocate gigabytes.
	maxRecordLen = 16 << 20
	// maxCommitBatch bounds the renames done per directory fsync.
	maxCommitBatch = 4096
	// loadReaders is the number of goroutines reading the spool at Open.
	loadReaders = 8
	loadBatch   = 64
)

type fileSpool struct {
	dir, tmpDir, msgDir, quarDir string
	log                          *slog.Logger
	names                        []string // found by scan, for load

	commits chan *commitReq
	stop    chan struct{}
	// closeMu is held (read) by commit from the hand-over to the
	// committer until its answer, so that close stops the committer only
	// when no request is left unanswered; closed sends later commits
	// the slow way.
	closeMu sync.RWMutex
	closed  bool
	stopped sync.WaitGroup
	batches atomic.Int64 // directory fsyncs done by the committer
	// beforeBatch, when set (by tests), runs when the committer has
	// taken the first request of a batch.
	beforeBatch func()
}

type commitReq struct {
	tmp, final string
	done       chan error
}

func openFileSpool(dir string, log *slog.Logger) (*fileSpool, error) {
	s := &fileSpool{
		dir:     dir,
		tmpDir:  filepath.Join(dir, "tmp"),
		msgDir:  filepath.Join(dir, "msg"),
		quarDir: filepath.Join(dir, "quarantine"),
		log:     log,
		commits: make(chan *commitReq, 256),
		stop:    make(chan struct{}),
	}
	for _, d := range []string{s.tmpDir, s.msgDir, s.quarDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("queue: open %s: %w", dir, err)
		}
	}
	// Whatever is in tmp was never committed: its Enqueue did not return.
	ents, err := os.ReadDir(s.tmpDir)
	if err != nil {
		return nil, fmt.Errorf("queue: open %s: %w", dir, err)
	}
	for _, e := range ents {
		p := filepath.Join(s.tmpDir, e.Name())
		if err := os.RemoveAll(p); err != nil {
			return nil, fmt.Errorf("queue: open %s: clean tmp: %w", dir, err)
		}
		log.Debug("queue: removed uncommitted file", "file", p)
	}
	if err := s.scan(); err != nil {
		return nil, fmt.Errorf("queue: open %s: %w", dir, err)
	}
	s.stopped.Add(1)
	go s.committer()
	return s, nil
}

func (s *fileSpool) create(ctx context.Context, rec *record, r io.Reader) (err error) {
	tmp := filepath.Join(s.tmpDir, rec.ID)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("queue: create: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	bw := bufio.NewWriterSize(f, 32<<10)
	n, err := io.Copy(bw, ctxio.Reader(ctx, r))
	if err != nil {
		return fmt.Errorf("queue: read body: %w", err)
	}
	rec.Size = n
	meta, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("queue: encode record: %w", err)
	}
	bw.Write(meta)
	fmt.Fprintf(bw, "\n%012d%s", len(meta), trailerMagic)
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("queue: write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("queue: fsync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("queue: close %s: %w", tmp, err)
	}
	// Not interruptible by ctx: once handed over the message may be
	// committed, and the caller must learn whether it was.
	return s.commit(tmp, filepath.Join(s.msgDir, rec.ID))
}

// commit renames tmp to final, in msg/, and makes the rename durable: the
// committer does it for a batch of requests with one directory fsync.
func (s *fileSpool) commit(tmp, final string) error {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		// After close (an administrator's Hold, say): alone.
		if err := os.Rename(tmp, final); err != nil {
			return fmt.Errorf("queue: commit: %w", err)
		}
		if err := syncDir(s.msgDir); err != nil {
			return fmt.Errorf("queue: commit: %w", err)
		}
		return nil
	}
	req := &commitReq{tmp: tmp, final: final, done: make(chan error, 1)}
	s.commits <- req
	return <-req.done
}

// committer renames batches of fsynced files into msg/ and makes the
// renames durable with one directory fsync per batch.
func (s *fileSpool) committer() {
	defer s.stopped.Done()
	var batch []*commitReq
	for {
		batch = batch[:0]
		select {
		case r := <-s.commits:
			batch = append(batch, r)
		case <-s.stop:
			return
		}
		if s.beforeBatch != nil {
			s.beforeBatch()
		}
	drain:
		for len(batch) < maxCommitBatch {
			select {
			case r := <-s.commits:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		errs := make([]error, len(batch))
		for i, r := range batch {
			if err := os.Rename(r.tmp, r.final); err != nil {
				errs[i] = fmt.Errorf("queue: commit: %w", err)
			}
		}
		s.batches.Add(1)
		if err := syncDir(s.msgDir); err != nil {
			// The renames may or may not survive a crash; the
			// producers are told it failed (at-least-once: a message
			// reported as failed may still be delivered).
			for i := range errs {
				if errs[i] == nil {
					errs[i] = fmt.Errorf("queue: commit: %w", err)
				}
			}
		}
		for i, r := range batch {
			r.done <- errs[i]
		}
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

func (s *fileSpool) update(rec *record) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("queue: encode record: %w", err)
	}
	f, err := os.CreateTemp(s.tmpDir, rec.ID+".st-*")
	if err != nil {
		return fmt.Errorf("queue: update %s: %w", rec.ID, err)
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = s.commit(tmp, filepath.Join(s.msgDir, rec.ID+stateSuffix))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("queue: update %s: %w", rec.ID, err)
	}
	return nil
}

func (s *fileSpool) remove(id string) error {
	err := os.Remove(filepath.Join(s.msgDir, id))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("queue: remove %s: %w", id, err)
	}
	err = os.Remove(filepath.Join(s.msgDir, id+stateSuffix))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("queue: remove %s: %w", id, err)
	}
	return nil
}

func (s *fileSpool) openBody(rec *record) (bodyReader, error) {
	f, err := os.Open(filepath.Join(s.msgDir, rec.ID))
	if err != nil {
		return nil, fmt.Errorf("queue: open body: %w", err)
	}
	return sectionFile{io.NewSectionReader(f, 0, rec.Size), f}, nil
}

type sectionFile struct {
	*io.SectionReader
	f *os.File
}

func (s sectionFile) Close() error { return s.f.Close() }

// scan lists the spool directory. It runs in openFileSpool, before any
// Enqueue can add files, so that load only sees the previous run's messages.
func (s *fileSpool) scan() error {
	d, err := os.Open(s.msgDir)
	if err != nil {
		return err
	}
	s.names, err = d.Readdirnames(-1)
	d.Close()
	return err
}

func (s *fileSpool) load(ctx context.Context, fn func([]*record)) error {
	names := s.names
	s.names = nil
	msgs := make([]string, 0, len(names))
	states := make(map[string]bool)
	for _, n := range names {
		switch {
		case validID(n):
			msgs = append(msgs, n)
		case strings.HasSuffix(n, stateSuffix) && validID(strings.TrimSuffix(n, stateSuffix)):
			states[strings.TrimSuffix(n, stateSuffix)] = true
		default:
			s.log.Warn("queue: unexpected file in spool", "file", filepath.Join(s.msgDir, n))
		}
	}
	// IDs start with their creation time: oldest first. Several readers
	// work at once because reading 100,000 small files is bound by the
	// latency of the filesystem, not by the CPU.
	slices.Sort(msgs)
	ids := make(chan string)
	var wg sync.WaitGroup
	for range loadReaders {
		wg.Go(func() {
			// Records are handed over in batches: one lock of the
			// scheduler per batch, not per message.
			batch := make([]*record, 0, loadBatch)
			for id := range ids {
				rec, err := s.readMessage(id, states[id])
				if err != nil {
					s.quarantine(id, err)
					continue
				}
				if batch = append(batch, rec); len(batch) == loadBatch {
					fn(batch)
					batch = make([]*record, 0, loadBatch)
				}
			}
			if len(batch) > 0 {
				fn(batch)
			}
		})
	}
	var err error
	for _, id := range msgs {
		if err = ctx.Err(); err != nil {
			break
		}
		ids <- id
	}
	close(ids)
	wg.Wait()
	if err != nil {
		return err
	}
	// A state file without its message: a removal was interrupted.
	for _, id := range msgs {
		delete(states, id)
	}
	for id := range states {
		os.Remove(filepath.Join(s.msgDir, id+stateSuffix))
	}
	return nil
}

func (s *fileSpool) readMessage(id string, hasState bool) (*record, error) {
	f, err := os.Open(filepath.Join(s.msgDir, id))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := st.Size()
	if size < trailerLen {
		return nil, errors.New("file too short")
	}
	// One read of the tail usually gets the trailer and the record.
	tail := make([]byte, min(size, 4096))
	if _, err := f.ReadAt(tail, size-int64(len(tail))); err != nil {
		return nil, err
	}
	tr := tail[len(tail)-trailerLen:]
	if tr[0] != '\n' || string(tr[13:]) != trailerMagic {
		return nil, errors.New("bad trailer (truncated?)")
	}
	n, err := strconv.ParseInt(string(tr[1:13]), 10, 64)
	if err != nil || n <= 0 || n > maxRecordLen || n > size-trailerLen {
		return nil, errors.New("bad record length in trailer")
	}
	var meta []byte
	if n <= int64(len(tail)-trailerLen) {
		meta = tail[len(tail)-trailerLen-int(n) : len(tail)-trailerLen]
	} else {
		meta = make([]byte, n)
		if _, err := f.ReadAt(meta, size-trailerLen-n); err != nil {
			return nil, err
		}
	}
	rec := new(record)
	if err := json.Unmarshal(meta, rec); err != nil {
		return nil, fmt.Errorf("record: %w", err)
	}
	bodySize := size - trailerLen - n
	if rec.ID != id {
		return nil, fmt.Errorf("record is for %q", rec.ID)
	}
	if hasState {
		b, err := os.ReadFile(filepath.Join(s.msgDir, id+stateSuffix))
		if err != nil {
			return nil, err
		}
		srec := new(record)
		if err := json.Unmarshal(b, srec); err != nil {
			return nil, fmt.Errorf("state file: %w", err)
		}
		if srec.ID != id || len(srec.Rcpt) != len(rec.Rcpt) {
			return nil, errors.New("state file does not match its message")
		}
		rec = srec
	}
	rec.Size = bodySize
	if len(rec.Rcpt) == 0 {
		return nil, errors.New("record has no recipients")
	}
	for _, r := range rec.Rcpt {
		switch r.State {
		case StatePending, StateDelivered, StateFailed:
		default:
			return nil, fmt.Errorf("recipient %q has state %q", r.Addr, r.State)
		}
	}
	return rec, nil
}

// quarantine moves the files of a message that cannot be read out of the
// spool. It is logged at error level: a human should look at it.
func (s *fileSpool) quarantine(id string, cause error) {
	s.log.Error("queue: unreadable message moved to quarantine", "id", id, "dir", s.quarDir, "error", cause)
	for _, n := range []string{id, id + stateSuffix} {
		err := os.Rename(filepath.Join(s.msgDir, n), filepath.Join(s.quarDir, n))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.log.Error("queue: quarantine", "file", n, "error", err)
		}
	}
}

func (s *fileSpool) close() error {
	s.closeMu.Lock()
	s.closed = true
	s.closeMu.Unlock()
	close(s.stop)
	s.stopped.Wait()
	return nil
}
