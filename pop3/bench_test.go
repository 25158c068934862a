package pop3

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks/store"
	"github.com/mailblocks/mailblocks/store/maildir"
	"github.com/mailblocks/mailblocks/store/memstore"
)

// benchMessage is a message of about 4 KB.
func benchMessage(i int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "From: sender@example.net\r\nTo: u@example.org\r\nSubject: message %d\r\n"+
		"Message-ID: <%d@example.net>\r\nDate: Mon, 23 Nov 2026 00:00:00 +0000\r\n\r\n", i, i)
	for b.Len() < 4000 {
		b.WriteString("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod.\r\n")
	}
	b.WriteString(".a line that needs byte-stuffing\r\n")
	return b.String()
}

type benchStore interface {
	Store
	store.Deliverer
	AddUser(ctx context.Context, addr, password string, quota store.Quota) error
}

// BenchmarkRetrieveAll measures a POP3 client downloading every message
// of a 10,000-message INBOX (~4 KB each) over loopback: login, LIST, then
// RETR of each message read to the end, QUIT.
//
//	go test -run XXX -bench RetrieveAll -benchtime 3x ./pop3
func BenchmarkRetrieveAll(b *testing.B) {
	const messages = 10000
	stores := map[string]func(b *testing.B) benchStore{
		"maildir": func(b *testing.B) benchStore {
			st, err := maildir.Open(b.TempDir(), maildir.Options{NoFsync: true, HashPassword: memstore.InsecureFastHash})
			require.NoError(b, err)
			return st
		},
		"memstore": func(b *testing.B) benchStore {
			return memstore.New(memstore.Options{HashPassword: memstore.InsecureFastHash})
		},
	}
	for _, name := range []string{"maildir", "memstore"} {
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			st := stores[name](b)
			require.NoError(b, st.AddUser(ctx, "u@example.org", "pw", store.Quota{}))
			var total int64
			for i := range messages {
				m := benchMessage(i)
				total += int64(len(m))
				_, err := st.Deliver(ctx, "u@example.org", strings.NewReader(m), store.DeliverOptions{})
				require.NoError(b, err)
			}
			opts := testOptions()
			_, addr := startServer(b, st, opts)
			b.SetBytes(total)
			b.ResetTimer()
			for b.Loop() {
				c, err := Dial(ctx, addr, ClientOptions{})
				require.NoError(b, err)
				require.NoError(b, c.Login(ctx, "u@example.org", "pw"))
				list, err := c.List(ctx)
				require.NoError(b, err)
				require.Len(b, list, messages)
				var got int64
				for _, m := range list {
					rc, err := c.Retrieve(ctx, m.Number)
					require.NoError(b, err)
					n, err := io.Copy(io.Discard, rc)
					require.NoError(b, err)
					got += n
				}
				require.Equal(b, total, got)
				require.NoError(b, c.Quit(ctx))
			}
			b.ReportMetric(float64(messages*b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
