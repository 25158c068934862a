package queue

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailblocks/mailblocks"
)

// Benchmarks. Figures measured 2026-11-23 on the shared 2-core CI VM (ext4
// on a virtual disk; other jobs running, so expect ±50%):
//
//	go test -run '^$' -bench 'Fsync|Enqueue' -benchtime 2000x ./queue/
//	  Fsync4K/write+fsync                  1330 files/s
//	  Fsync4K/write+fsync+rename+dirfsync   992 files/s
//	  Enqueue4K/producers=1                 979 msgs/s  (= the raw rate)
//	  Enqueue4K/producers=32               2318 msgs/s  (group commit)
//	go test -run '^$' -bench DeliverNoop -benchtime 20000x ./queue/
//	  DeliverNoop/file                     4347 msgs/s
//	  DeliverNoop/memory                 152879 msgs/s
//	go test -run '^$' -bench Restart100k -benchtime 2x ./queue/
//	  first delivery 102 ms after Open, whole spool loaded in 3.3 s,
//	  76 MB of heap (796 B per queued message)
//
// When the disk was busier (load average 16) the same commands gave
// 166/180 files/s raw, 204 and 1189 msgs/s enqueued.

var body4K = strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\r\n", 64)

// BenchmarkFsync4K is the disk's raw rate for the unit of work of a
// durable queue without group commit: create a 4 KB file, fsync it, rename
// it into place and fsync the directory.
func BenchmarkFsync4K(b *testing.B) {
	b.Run("write+fsync", func(b *testing.B) {
		dir := b.TempDir()
		for i := 0; b.Loop(); i++ {
			f, err := os.Create(filepath.Join(dir, fmt.Sprint(i)))
			if err != nil {
				b.Fatal(err)
			}
			f.WriteString(body4K)
			if err := f.Sync(); err != nil {
				b.Fatal(err)
			}
			f.Close()
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "files/s")
	})
	b.Run("write+fsync+rename+dirfsync", func(b *testing.B) {
		dir := b.TempDir()
		os.Mkdir(filepath.Join(dir, "tmp"), 0o700)
		for i := 0; b.Loop(); i++ {
			tmp := filepath.Join(dir, "tmp", fmt.Sprint(i))
			f, err := os.Create(tmp)
			if err != nil {
				b.Fatal(err)
			}
			f.WriteString(body4K)
			if err := f.Sync(); err != nil {
				b.Fatal(err)
			}
			f.Close()
			if err := os.Rename(tmp, filepath.Join(dir, fmt.Sprint(i))); err != nil {
				b.Fatal(err)
			}
			if err := syncDir(dir); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "files/s")
	})
}

// BenchmarkEnqueue4K: durable enqueues of 4 KB messages by 1 and 32
// concurrent producers (the queue is not started).
func BenchmarkEnqueue4K(b *testing.B) {
	for _, producers := range []int{1, 32} {
		b.Run(fmt.Sprintf("producers=%d", producers), func(b *testing.B) {
			q, err := Open(b.TempDir(), DeliverFunc(nil), Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer q.Close()
			e := env("alice@example.org", "bob@example.com")
			var n atomic.Int64
			n.Store(int64(b.N))
			b.ResetTimer()
			var wg sync.WaitGroup
			for range producers {
				wg.Go(func() {
					for n.Add(-1) >= 0 {
						if _, err := q.Enqueue(context.Background(), e, strings.NewReader(body4K)); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// BenchmarkDeliverNoop: scheduler and spool cost per delivered message,
// with a Deliverer that accepts everything at once. The messages are
// queued before the timer starts.
func BenchmarkDeliverNoop(b *testing.B) {
	for _, kind := range []string{"file", "memory"} {
		b.Run(kind, func(b *testing.B) {
			var delivered atomic.Int64
			done := make(chan struct{})
			d := DeliverFunc(func(ctx context.Context, env *mailblocks.Envelope, _ io.ReaderAt, _ int64) []mailblocks.DeliveryStatus {
				if delivered.Add(1) == int64(b.N) {
					close(done)
				}
				return []mailblocks.DeliveryStatus{{Recipient: env.Recipients[0].Address}}
			})
			var q *Queue
			if kind == "memory" {
				q = NewMemory(d, Options{})
			} else {
				var err error
				if q, err = Open(b.TempDir(), d, Options{}); err != nil {
					b.Fatal(err)
				}
			}
			defer q.Close()
			var wg sync.WaitGroup
			var n atomic.Int64
			n.Store(int64(b.N))
			for g := range 32 {
				wg.Go(func() {
					for i := n.Add(-1); i >= 0; i = n.Add(-1) {
						e := env("alice@example.org", fmt.Sprintf("u%d@d%d.example", i, g%8))
						if _, err := q.Enqueue(context.Background(), e, strings.NewReader(body4K)); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ResetTimer()
			q.Start(context.Background())
			<-done
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// BenchmarkRestart100k: open a spool holding 100,000 messages and start
// the queue; reports the time until the first delivery, until the whole
// spool is loaded, and the heap it takes.
func BenchmarkRestart100k(b *testing.B) {
	const count = 100_000
	dir := b.TempDir()
	if err := buildSpool(dir, count); err != nil {
		b.Fatal(err)
	}
	var first, loaded time.Duration
	var heapBytes float64
	for b.Loop() {
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		firstCall := make(chan time.Time, 1)
		d := DeliverFunc(func(ctx context.Context, env *mailblocks.Envelope, _ io.ReaderAt, _ int64) []mailblocks.DeliveryStatus {
			select {
			case firstCall <- time.Now():
			default:
			}
			// Hold the slot: nothing is delivered, the spool stays
			// the same for the next iteration.
			<-ctx.Done()
			return []mailblocks.DeliveryStatus{{Recipient: env.Recipients[0].Address, Err: ctx.Err()}}
		})
		q, err := Open(dir, d, Options{})
		if err != nil {
			b.Fatal(err)
		}
		q.Start(context.Background())
		t1 := <-firstCall
		<-q.loaded
		t2 := time.Now()
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		first += t1.Sub(start)
		loaded += t2.Sub(start)
		heapBytes += float64(after.HeapAlloc) - float64(before.HeapAlloc)
		if l, _ := q.List(context.Background()); len(l) != count {
			b.Fatalf("%d messages loaded, want %d", len(l), count)
		}
		q.Close()
	}
	b.ReportMetric(float64(first.Milliseconds())/float64(b.N), "ms-to-first-delivery")
	b.ReportMetric(float64(loaded.Milliseconds())/float64(b.N), "ms-to-loaded")
	b.ReportMetric(heapBytes/float64(b.N)/(1<<20), "MB-heap")
	b.ReportMetric(heapBytes/float64(b.N)/count, "B-heap/msg")
}

// buildSpool writes count messages in the file spool's format without
// fsync (what matters is reopening them).
func buildSpool(dir string, count int) error {
	sp, err := openFileSpool(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	sp.close()
	body := []byte(strings.Repeat("x", 1000) + "\r\n")
	now := time.Now().Add(-time.Hour)
	var buf bytes.Buffer
	for i := range count {
		e := env("alice@example.org", fmt.Sprintf("u%d@d%d.example", i, i%100))
		rec := newRecord(newID(), e, now)
		rec.Size = int64(len(body))
		meta, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		buf.Reset()
		buf.Write(body)
		buf.Write(meta)
		fmt.Fprintf(&buf, "\n%012d%s", len(meta), trailerMagic)
		if err := os.WriteFile(filepath.Join(sp.msgDir, rec.ID), buf.Bytes(), 0o600); err != nil {
			return err
		}
	}
	return nil
}
