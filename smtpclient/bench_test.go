package smtpclient_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mailblocks/mailblocks"
	"github.com/mailblocks/mailblocks/smtpclient"
)

// discardSession accepts everything and throws the content away.
type discardSession struct{}

func (discardSession) Mail(string, *smtp.MailOptions) error { return nil }
func (discardSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (discardSession) Data(r io.Reader) error {
	_, err := io.Copy(io.Discard, r)
	return err
}
func (discardSession) Reset()        {}
func (discardSession) Logout() error { return nil }

// startDiscard starts a go-smtp server that discards every message and
// returns its port and a function that stops it.
func startDiscard() (int, func(), error) {
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return discardSession{}, nil }))
	srv.Domain = "sink.test"
	srv.ReadTimeout, srv.WriteTimeout = time.Minute, time.Minute
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, smtp.ErrServerClosed) {
			panic(err)
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port, func() { srv.Close(); <-done }, nil
}

// message4K is a 4 KB message.
func message4K() string {
	var b strings.Builder
	b.WriteString("From: a@sender.test\r\nTo: b@dest.test\r\nSubject: benchmark\r\n\r\n")
	for b.Len() < 4096-78 {
		b.WriteString(strings.Repeat("x", 76) + "\r\n")
	}
	return b.String()
}

func benchDeliver(b *testing.B, port int, maxPerConn int) {
	c := smtpclient.New(smtpclient.Options{Hostname: "client.test", Port: port, MaxMessagesPerConn: maxPerConn})
	defer c.Close()
	body := message4K()
	env := envelope("a@sender.test", "b@[127.0.0.1]")
	ctx := context.Background()
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	for b.Loop() {
		st := c.Deliver(ctx, env, strings.NewReader(body), int64(len(body)))
		if st[0].Err != nil {
			b.Fatal(st[0].Err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(c.Dials()), "dials")
}

// BenchmarkDeliver measures the delivery rate of 4 KB messages, one after
// the other, into a go-smtp server that discards them, with and without
// connection reuse.
func BenchmarkDeliver(b *testing.B) {
	port, stop, err := startDiscard()
	if err != nil {
		b.Fatal(err)
	}
	defer stop()
	b.Run("reuse", func(b *testing.B) { benchDeliver(b, port, 0) })
	b.Run("no-reuse", func(b *testing.B) { benchDeliver(b, port, 1) })
}

// BenchmarkDeliverParallel delivers from 8 goroutines at once over
// pooled sessions (MaxIdlePerHost 8), as a queue with a per-domain
// concurrency of 8 would.
func BenchmarkDeliverParallel(b *testing.B) {
	port, stop, err := startDiscard()
	if err != nil {
		b.Fatal(err)
	}
	defer stop()
	c := smtpclient.New(smtpclient.Options{Hostname: "client.test", Port: port, MaxIdlePerHost: 8})
	defer c.Close()
	body := message4K()
	env := envelope("a@sender.test", "b@[127.0.0.1]")
	b.SetBytes(int64(len(body)))
	b.SetParallelism(4) // 4 x GOMAXPROCS(2) = 8 goroutines
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			st := c.Deliver(context.Background(), env, strings.NewReader(body), int64(len(body)))
			if st[0].Err != nil {
				b.Error(st[0].Err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(c.Dials()), "dials")
}

// BenchmarkDeliverSmtpSink is the same into Postfix's smtp-sink.
func BenchmarkDeliverSmtpSink(b *testing.B) {
	s := startSinkNoDump(b)
	b.Run("reuse", func(b *testing.B) { benchDeliver(b, s.port, 0) })
	b.Run("no-reuse", func(b *testing.B) { benchDeliver(b, s.port, 1) })
}

// ExampleClient_Deliver sends one message straight to an address literal.
// Real deployments give a Hostname with matching reverse DNS and let the
// client look up MX records (Options.Resolver) on port 25.
func ExampleClient_Deliver() {
	port, stop, err := startDiscard()
	if err != nil {
		panic(err)
	}
	defer stop()

	c := smtpclient.New(smtpclient.Options{Hostname: "mail.example.org", Port: port})
	defer c.Close()

	env := &mailblocks.Envelope{
		ID:         "example-1",
		From:       "alice@example.org",
		Recipients: []mailblocks.Recipient{{Address: "bob@[127.0.0.1]"}},
	}
	body := "From: alice@example.org\r\nTo: bob@[127.0.0.1]\r\nSubject: hi\r\n\r\nHello Bob.\r\n"
	for _, st := range c.Deliver(context.Background(), env, strings.NewReader(body), int64(len(body))) {
		fmt.Println(st.Recipient, st.Err == nil)
	}
	// Output: bob@[127.0.0.1] true
}
