package queue

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestStateCommit: progress (the .st file) is renamed by the committer, so
// its rename is made durable by a directory fsync shared with the enqueues
// waiting at that moment; after Close it is committed alone.
func TestStateCommit(t *testing.T) {
	dir := t.TempDir()
	q := openKind(t, "file", dir, newScripted(), Options{})
	fs := q.spool.(*fileSpool)
	a := enqueue(t, q, env("a@example.org", "b@example.com"))
	require.Equal(t, int64(1), fs.batches.Load())

	first := true
	fs.beforeBatch = func() {
		if !first {
			return
		}
		first = false
		// Hold the batch until the two other requests wait.
		assert.Eventually(t, func() bool { return len(fs.commits) == 2 }, waitTimeout, time.Millisecond)
	}
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			_, err := q.Enqueue(context.Background(), env("a@example.org", "c@example.com"), strings.NewReader(testBody))
			assert.NoError(t, err)
		})
	}
	wg.Go(func() { assert.NoError(t, q.Hold(context.Background(), a)) })
	wg.Wait()
	assert.Equal(t, int64(2), fs.batches.Load(), "two messages and a state: one directory fsync")
	st := filepath.Join(dir, "msg", a+stateSuffix)
	b, err := os.ReadFile(st)
	require.NoError(t, err)
	assert.Contains(t, string(b), `"held":true`)

	// After Close the committer is gone; a state change still lands.
	require.NoError(t, q.Close())
	require.NoError(t, q.Release(context.Background(), a))
	b, err = os.ReadFile(st)
	require.NoError(t, err)
	assert.NotContains(t, string(b), `"held":true`)
	ents, err := os.ReadDir(filepath.Join(dir, "tmp"))
	require.NoError(t, err)
	assert.Empty(t, ents)
}

// BenchmarkStateUpdate: saving a message's progress (the .st file), by 1 or
// 32 deliveries at once, as deferred recipients do.
func BenchmarkStateUpdate(b *testing.B) {
	for _, writers := range []int{1, 32} {
		b.Run("writers="+strconv.Itoa(writers), func(b *testing.B) {
			q, err := Open(b.TempDir(), DeliverFunc(nil), Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer q.Close()
			recs := make([]*record, writers)
			for i := range recs {
				recs[i] = newRecord(newID(), env("alice@example.org", "bob@example.com"), time.Now())
			}
			var n atomic.Int64
			n.Store(int64(b.N))
			b.ResetTimer()
			var wg sync.WaitGroup
			for _, rec := range recs {
				wg.Go(func() {
					for n.Add(-1) >= 0 {
						rec.Rcpt[0].Attempts++
						if err := q.spool.update(rec); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "updates/s")
		})
	}
}
