package queue_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/mailblocks/mailblocks"
	"github.com/mailblocks/mailblocks/queue"
)

// A queue on disk delivering through a Deliverer; in a server the
// Deliverer is an *smtpclient.Client.
func Example() {
	dir, _ := os.MkdirTemp("", "queue-example")
	defer os.RemoveAll(dir)

	delivered := make(chan string)
	d := queue.DeliverFunc(func(ctx context.Context, env *mailblocks.Envelope, body io.ReaderAt, size int64) []mailblocks.DeliveryStatus {
		res := make([]mailblocks.DeliveryStatus, len(env.Recipients))
		for i, r := range env.Recipients {
			res[i] = mailblocks.DeliveryStatus{Recipient: r.Address, RemoteHost: "mx.example.com"}
			delivered <- r.Address
		}
		return res
	})
	q, err := queue.Open(dir, d, queue.Options{Hostname: "mta.example.org"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer q.Close()
	q.Start(context.Background())

	env := &mailblocks.Envelope{
		From:       "alice@example.org",
		Recipients: []mailblocks.Recipient{{Address: "bob@example.com"}},
	}
	msg := "From: alice@example.org\r\nTo: bob@example.com\r\nSubject: hi\r\n\r\nHello.\r\n"
	if _, err := q.Enqueue(context.Background(), env, strings.NewReader(msg)); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("delivered to", <-delivered)
	// Output: delivered to bob@example.com
}

// Bounces of local senders can go straight to their mailbox instead of
// through the queue.
func ExampleBounceFunc() {
	bounce := queue.BounceFunc(func(ctx context.Context, env *mailblocks.Envelope, body io.Reader) error {
		// e.g. store.Deliverer.Deliver(ctx, env.Recipients[0].Address, body)
		fmt.Printf("notice from <%s> to <%s>\n", env.From, env.Recipients[0].Address)
		return nil
	})
	failed := make(chan struct{})
	d := queue.DeliverFunc(func(ctx context.Context, env *mailblocks.Envelope, body io.ReaderAt, size int64) []mailblocks.DeliveryStatus {
		defer close(failed)
		return []mailblocks.DeliveryStatus{{Recipient: env.Recipients[0].Address, Err: mailblocks.ErrNoSuchUser}}
	})
	q := queue.NewMemory(d, queue.Options{Bounce: bounce})
	q.Start(context.Background())
	env := &mailblocks.Envelope{
		From:       "alice@example.org",
		Recipients: []mailblocks.Recipient{{Address: "nobody@example.com"}},
	}
	q.Enqueue(context.Background(), env, strings.NewReader("Subject: hi\r\n\r\nHello.\r\n"))
	<-failed
	q.Shutdown(context.Background())
	// Output: notice from <> to <alice@example.org>
}
