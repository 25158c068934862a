package memstore_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/mailblocks/mailblocks/store"
	"github.com/mailblocks/mailblocks/store/memstore"
)

func benchStore(b *testing.B) *memstore.Store {
	s, err := memstore.NewWithUsers(memstore.Options{}, map[string]string{"bench@example.org": "pw"})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// body4K is a 4 KB message with CRLF line endings.
var body4K = []byte("Subject: bench\r\n\r\n" + strings.Repeat(strings.Repeat("x", 62)+"\r\n", 64))

func BenchmarkDeliver4K(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	b.SetBytes(int64(len(body4K)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Deliver(ctx, "bench@example.org", bytes.NewReader(body4K), store.DeliverOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDeliver4KParallel(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	b.SetBytes(int64(len(body4K)))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Deliver(ctx, "bench@example.org", bytes.NewReader(body4K), store.DeliverOptions{}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkList100k(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	small := []byte("Subject: s\r\n\r\nx\r\n")
	for i := range 100_000 {
		var flags []string
		if i%2 == 0 {
			flags = []string{store.FlagSeen}
		}
		if _, err := s.Deliver(ctx, "bench@example.org", bytes.NewReader(small), store.DeliverOptions{Flags: flags}); err != nil {
			b.Fatal(err)
		}
	}
	mb, _ := s.Mailbox(ctx, "bench@example.org")
	inbox, _ := mb.Folder(ctx, "INBOX")
	b.ReportAllocs()
	for b.Loop() {
		l, err := inbox.List(ctx)
		if err != nil || len(l) != 100_000 {
			b.Fatal(len(l), err)
		}
	}
}
