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

// newBenchStore returns a maildir or memstore with the user u@example.org
// and messages of ~4 KB in its INBOX, and their total size.
func newBenchStore(b *testing.B, name string, messages int) (benchStore, int64) {
	ctx := context.Background()
	var st benchStore
	switch name {
	case "maildir":
		md, err := maildir.Open(b.TempDir(), maildir.Options{NoFsync: true, HashPassword: memstore.InsecureFastHash})
		require.NoError(b, err)
		st = md
	default:
		st = memstore.New(memstore.Options{HashPassword: memstore.InsecureFastHash})
	}
	require.NoError(b, st.AddUser(ctx, "u@example.org", "pw", store.Quota{}))
	var total int64
	for i := range messages {
		m := benchMessage(i)
		total += int64(len(m))
		_, err := st.Deliver(ctx, "u@example.org", strings.NewReader(m), store.DeliverOptions{})
		require.NoError(b, err)
	}
	return st, total
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
	for _, name := range []string{"maildir", "memstore"} {
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			st, total := newBenchStore(b, name, messages)
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

// BenchmarkRetrieveAllPipelined is BenchmarkRetrieveAll with the RETR
// commands pipelined (RFC 2449 PIPELINING) in batches of 100, as a
// collector could send them: it measures the server rather than the
// round trips.
//
//	go test -run XXX -bench RetrieveAllPipelined -benchtime 3x ./pop3
func BenchmarkRetrieveAllPipelined(b *testing.B) {
	const messages, batch = 10000, 100
	for _, name := range []string{"maildir", "memstore"} {
		b.Run(name, func(b *testing.B) {
			st, total := newBenchStore(b, name, messages)
			_, addr := startServer(b, st, testOptions())
			b.SetBytes(total)
			b.ResetTimer()
			for b.Loop() {
				c := dialRaw(b, addr)
				c.prefix("+OK ")
				c.send("USER u@example.org", "PASS pw")
				c.expect("+OK send PASS", "+OK maildrop locked and ready")
				var got int64
				for first := 1; first <= messages; first += batch {
					var cmds strings.Builder
					for n := first; n < first+batch; n++ {
						fmt.Fprintf(&cmds, "RETR %d\r\n", n)
					}
					_, err := c.c.Write([]byte(cmds.String()))
					require.NoError(b, err)
					for range batch {
						c.prefix("+OK ")
						for {
							l, err := c.r.ReadSlice('\n')
							require.NoError(b, err)
							if string(l) == ".\r\n" {
								break
							}
							got += int64(len(l))
							if l[0] == '.' {
								got--
							}
						}
					}
				}
				require.Equal(b, total, got)
				c.cmd("QUIT", "+OK pop.test POP3 server signing off (10000 messages left)")
				c.c.Close()
			}
			b.ReportMetric(float64(messages*b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
