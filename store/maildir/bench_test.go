package maildir_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks/store"
	"github.com/mailblocks/mailblocks/store/maildir"
)

// message4K is a 4 KiB message with LF line endings.
var message4K = func() string {
	var b strings.Builder
	b.WriteString("From: bob@example.net\nTo: alice@example.org\nSubject: benchmark\n\n")
	for b.Len() < 4096-64 {
		b.WriteString("The quick brown fox jumps over the lazy dog, again and again.\n")
	}
	return b.String()
}()

// BenchmarkRawFsync is the yardstick for BenchmarkDeliver: create, write
// and fsync a 4 KiB file, on the same file system as the store.
func BenchmarkRawFsync(b *testing.B) {
	dir := b.TempDir()
	data := []byte(message4K)
	b.ResetTimer()
	start := time.Now()
	for i := 0; b.Loop(); i++ {
		f, err := os.Create(filepath.Join(dir, fmt.Sprint(i)))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := f.Write(data); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "fsyncs/s")
}

// BenchmarkDeliver delivers 4 KiB messages with fsync (file, directory,
// index) into one mailbox from 1 and 16 concurrent writers.
func BenchmarkDeliver(b *testing.B) {
	for _, writers := range []int{1, 16} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			ctx := context.Background()
			s, err := maildir.Open(b.TempDir(), testOptions())
			require.NoError(b, err)
			require.NoError(b, s.AddUser(ctx, testUser, "", store.Quota{}))
			var n atomic.Int64
			b.SetBytes(int64(len(message4K)))
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for range writers {
				wg.Go(func() {
					for n.Add(1) <= int64(b.N) {
						if _, err := s.Deliver(ctx, testUser, strings.NewReader(message4K), store.DeliverOptions{}); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
		})
	}
}

// BenchmarkFolder100k measures a folder of 100,000 messages: opening it
// with a new Store (cold: reads the index, lists the directories), listing
// it again on the same Store (warm: nothing changed, only stats), and
// STATUS. Memory is the heap the Store retains after a cold open.
func BenchmarkFolder100k(b *testing.B) {
	const n = 100000
	ctx := context.Background()
	dir := b.TempDir()
	s, err := maildir.Open(dir, testOptions())
	require.NoError(b, err)
	require.NoError(b, s.AddUser(ctx, testUser, "", store.Quota{}))
	cur := filepath.Join(inboxDir(dir), "cur")
	body := []byte(strings.ReplaceAll(message4K, "\r\n", "\n"))
	w := int64(len(body) + bytes.Count(body, []byte("\n")))
	flags := []string{"", "S", "RS", "FS", "S"}
	// Written directly, without fsync, as another program would; the
	// first List indexes them (not timed).
	for i := range n {
		name := fmt.Sprintf("%d.M%dP1Q%d.bench,S=%d,W=%d:2,%s", 1700000000+i, i, i, len(body), w, flags[i%len(flags)])
		require.NoError(b, os.WriteFile(filepath.Join(cur, name), body, 0o600))
	}
	l := list(b, openFolder(b, s, "INBOX"))
	require.Len(b, l, n)
	// A folder not modified in the last seconds, as most are: the warm
	// path may trust directory mtimes.
	old := time.Now().Add(-time.Hour)
	for _, d := range []string{"cur", "new"} {
		require.NoError(b, os.Chtimes(filepath.Join(inboxDir(dir), d), old, old))
	}

	b.Run("cold-open-list", func(b *testing.B) {
		b.ReportAllocs()
		var heap uint64
		for b.Loop() {
			runtime.GC()
			var m0, m1 runtime.MemStats
			runtime.ReadMemStats(&m0)
			s2, err := maildir.Open(dir, testOptions())
			require.NoError(b, err)
			require.Len(b, list(b, openFolder(b, s2, "INBOX")), n)
			runtime.GC()
			runtime.ReadMemStats(&m1)
			heap = m1.HeapAlloc - min(m0.HeapAlloc, m1.HeapAlloc)
			runtime.KeepAlive(s2)
		}
		b.ReportMetric(float64(heap)/(1<<20), "retained-MB")
	})
	s2, err := maildir.Open(dir, testOptions())
	require.NoError(b, err)
	f := openFolder(b, s2, "INBOX")
	require.Len(b, list(b, f), n)
	b.Run("warm-list", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			l, err := f.List(ctx)
			if err != nil || len(l) != n {
				b.Fatal(err, len(l))
			}
		}
	})
	b.Run("warm-status", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			st, err := f.Status(ctx)
			if err != nil || st.Messages != n {
				b.Fatal(err, st.Messages)
			}
		}
	})
}
