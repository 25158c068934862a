package imapbackend

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks/store"
)

const benchMessages = 10000

var benchWords = strings.Fields(`lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod
tempor incididunt ut labore et dolore magna aliqua enim ad minim veniam quis nostrud exercitation
ullamco laboris nisi aliquip ex ea commodo consequat duis aute irure in reprehenderit voluptate velit`)

// benchMessage is a ~4 KB message; one in a hundred mentions "needle".
func benchMessage(r *rand.Rand, i int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Return-Path: <sender%d@example.net>\r\n", i%97)
	fmt.Fprintf(&b, "Received: from mx.example.net (mx.example.net [192.0.2.%d]) by mail.example.org with ESMTPS id %08x; Mon, 2 Nov 2026 10:00:00 +0000\r\n", i%250, r.Uint32())
	fmt.Fprintf(&b, "From: Sender %d <sender%d@example.net>\r\nTo: Alice <alice@example.org>\r\nCc: team%d@example.org\r\n", i%97, i%97, i%13)
	fmt.Fprintf(&b, "Subject: Report number %d about %s %s\r\n", i, benchWords[r.IntN(len(benchWords))], benchWords[r.IntN(len(benchWords))])
	fmt.Fprintf(&b, "Date: Mon, 2 Nov 2026 %02d:%02d:00 +0000\r\nMessage-ID: <bench-%d@example.net>\r\n", i%24, i%60, i)
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
	for b.Len() < 4000 {
		line := 0
		for line < 70 {
			w := benchWords[r.IntN(len(benchWords))]
			b.WriteString(w)
			b.WriteByte(' ')
			line += len(w) + 1
		}
		b.WriteString("\r\n")
	}
	if i%100 == 0 {
		b.WriteString("the needle is here\r\n")
	}
	return b.String()
}

// BenchmarkIMAP measures whole commands over loopback with imapclient, on
// a maildir folder of 10,000 messages of ~4 KB.
//
//	go test -run '^$' -bench IMAP -benchtime 5x ./imapbackend/
func BenchmarkIMAP(b *testing.B) {
	benchIMAP(b, newMaildirStore(b), []int{0, -1})
}

// BenchmarkIMAPMemstore is BenchmarkIMAP over store/memstore: the cost of
// the backend and the protocol without the file system.
func BenchmarkIMAPMemstore(b *testing.B) {
	benchIMAP(b, newTestStore(b), []int{0})
}

func benchIMAP(b *testing.B, st testStore, caches []int) {
	r := rand.New(rand.NewPCG(1, 2))
	ctx := context.Background()
	for i := 0; i < benchMessages; i++ {
		_, err := st.Deliver(ctx, testUser, strings.NewReader(benchMessage(r, i)), store.DeliverOptions{Date: time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)})
		require.NoError(b, err)
	}

	for _, cache := range caches {
		variant := struct{ name string }{"cached"}
		if cache < 0 {
			variant.name = "nocache"
		}
		ts := newTestServerStore(b, st, Options{CacheSize: cache})
		c := ts.dial(b, nil)
		_, err := c.Select("INBOX", nil).Wait()
		require.NoError(b, err)

		b.Run("UIDFetchEnvelope/"+variant.name, func(b *testing.B) {
			// Warm up: with the cache on, the timed runs are served
			// from it; without, every run reads and parses every file.
			_, err := c.Fetch(imap.UIDSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{Envelope: true}).Collect()
			require.NoError(b, err)
			for b.Loop() {
				msgs, err := c.Fetch(imap.UIDSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, Flags: true, RFC822Size: true, Envelope: true}).Collect()
				require.NoError(b, err)
				require.Len(b, msgs, benchMessages)
			}
		})
		b.Run("FetchHeader/"+variant.name, func(b *testing.B) {
			sec := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, Peek: true}
			_, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{sec}}).Collect()
			require.NoError(b, err)
			for b.Loop() {
				msgs, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{sec}}).Collect()
				require.NoError(b, err)
				require.Len(b, msgs, benchMessages)
			}
		})
		b.Run("SearchText/"+variant.name, func(b *testing.B) {
			for b.Loop() {
				data, err := c.Search(&imap.SearchCriteria{Text: []string{"needle"}}, nil).Wait()
				require.NoError(b, err)
				require.Len(b, data.AllSeqNums(), benchMessages/100)
			}
		})
	}
}
