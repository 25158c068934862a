package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// BenchmarkSMTPToMaildir measures the whole inbound path of the assembled
// server: an SMTP client on loopback sends 4 KB messages to a local user;
// each is routed, written to the maildir and fsync'd before the 250.
// One connection per client carries many transactions.
//
//	go test -run '^$' -bench SMTPToMaildir -benchtime 2000x ./examples/mailserver
func BenchmarkSMTPToMaildir(b *testing.B) {
	for _, clients := range []int{1, 16} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			addr, stop := benchServer(b)
			defer stop()
			body := message("bob@remote.test", alice, "bench", strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\r\n", 62))
			var wg sync.WaitGroup
			per := (b.N + clients - 1) / clients
			b.SetBytes(int64(len(body)))
			b.ResetTimer()
			start := time.Now()
			for c := 0; c < clients; c++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					cl, err := smtp.Dial(addr)
					if err != nil {
						b.Error(err)
						return
					}
					defer cl.Close()
					if err := cl.Hello("bench.test"); err != nil {
						b.Error(err)
						return
					}
					for i := 0; i < per; i++ {
						if err := cl.SendMail("bob@remote.test", []string{alice}, strings.NewReader(body)); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(per*clients)/time.Since(start).Seconds(), "msgs/s")
		})
	}
}

// benchServer starts a mailserver with only the MX listener.
func benchServer(b *testing.B) (string, func()) {
	b.Helper()
	args := []string{"-data", b.TempDir(), "-smtp", "127.0.0.1:0", "-submission", "", "-submissions", "",
		"-imap", "", "-imaps", "", "-pop3", "", "-pop3s", "", "-user", alice + ":" + alicePass,
		"-max-messages-per-minute", "0", "-log-level", "error"}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan *mailServer, 1)
	done := make(chan error, 1)
	go func() { done <- runWith(ctx, args, io.Discard, io.Discard, func(m *mailServer) { ready <- m }) }()
	select {
	case m := <-ready:
		return m.Addr("smtp"), func() { cancel(); <-done }
	case err := <-done:
		cancel()
		b.Fatalf("mailserver: %v", err)
	}
	return "", nil
}
