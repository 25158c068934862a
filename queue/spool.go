package queue

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"github.com/mailblocks/mailblocks/internal/ctxio"
)

// spool is where the queue keeps messages. The scheduler owns the records in
// memory; the spool only makes them durable. The file implementation
// (filespool.go) survives crashes; the memory one is for tests and for
// embedders that accept losing the queue on exit.
type spool interface {
	// create stores rec and the body read from r. It sets rec.Size. When
	// it returns nil the message is durable.
	create(ctx context.Context, rec *record, r io.Reader) error
	// update persists the progress in rec (a snapshot nobody else
	// modifies).
	update(rec *record) error
	// remove forgets the message.
	remove(id string) error
	// openBody returns the body of the message.
	openBody(rec *record) (bodyReader, error)
	// load calls fn with the messages stored by a previous run, in
	// batches, roughly oldest first, until ctx is done. fn may be called
	// concurrently.
	load(ctx context.Context, fn func([]*record)) error
	// close releases the spool; no call may be in progress.
	close() error
}

// bodyReader is a message body that can be read many times.
type bodyReader interface {
	io.ReaderAt
	io.Closer
}

// memSpool keeps bodies in memory. Records are not copied: the scheduler's
// in-memory state is the only copy, exactly as with the file spool after a
// successful write.
type memSpool struct {
	mu     sync.Mutex
	bodies map[string][]byte
}

func newMemSpool() *memSpool { return &memSpool{bodies: make(map[string][]byte)} }

func (s *memSpool) create(ctx context.Context, rec *record, r io.Reader) error {
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, ctxio.Reader(ctx, r)); err != nil {
		return fmt.Errorf("queue: read body: %w", err)
	}
	// Marshal as the file spool does, so that an unserialisable record
	// fails the same way in both.
	if _, err := json.Marshal(rec); err != nil {
		return fmt.Errorf("queue: encode record: %w", err)
	}
	rec.Size = int64(buf.Len())
	s.mu.Lock()
	s.bodies[rec.ID] = buf.Bytes()
	s.mu.Unlock()
	return nil
}

func (s *memSpool) update(*record) error { return nil }

func (s *memSpool) remove(id string) error {
	s.mu.Lock()
	delete(s.bodies, id)
	s.mu.Unlock()
	return nil
}

func (s *memSpool) openBody(rec *record) (bodyReader, error) {
	s.mu.Lock()
	b, ok := s.bodies[rec.ID]
	s.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("queue: body of %s: %w", rec.ID, ErrNotFound)
	}
	return nopCloser{bytes.NewReader(b)}, nil
}

func (s *memSpool) load(context.Context, func([]*record)) error { return nil }
func (s *memSpool) close() error                                { return nil }

type nopCloser struct{ io.ReaderAt }

func (nopCloser) Close() error { return nil }
