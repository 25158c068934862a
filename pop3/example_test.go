package pop3_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"strings"
	"time"

	"github.com/mailblocks/mailblocks/pop3"
	"github.com/mailblocks/mailblocks/store"
	"github.com/mailblocks/mailblocks/store/memstore"
)

// Serve the INBOXes of a store over POP3 and read one with the client.
func Example() {
	ctx := context.Background()
	st, err := memstore.NewWithUsers(memstore.Options{DefaultDomain: "example.org"},
		map[string]string{"alice@example.org": "secret"})
	if err != nil {
		log.Fatal(err)
	}
	st.Deliver(ctx, "alice@example.org", strings.NewReader("Subject: hello\r\n\r\nHi Alice!\r\n"), store.DeliverOptions{})

	// Production servers set TLSConfig (STLS, or ServeTLS for port 995)
	// instead of allowing passwords in clear text.
	srv := pop3.NewServer(st, pop3.Options{Hostname: "mail.example.org", AllowInsecureAuth: true})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve(l)
	defer srv.Close()

	c, err := pop3.Dial(ctx, l.Addr().String(), pop3.ClientOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(c.Greeting())
	if err := c.Login(ctx, "alice", "secret"); err != nil {
		log.Fatal(err)
	}
	list, _ := c.List(ctx)
	for _, m := range list {
		rc, _ := c.Retrieve(ctx, m.Number)
		body, _ := io.ReadAll(rc)
		fmt.Printf("message %d, %d octets:\n%s", m.Number, m.Size, strings.ReplaceAll(string(body), "\r\n", "\n"))
		c.Delete(ctx, m.Number)
	}
	if err := c.Quit(ctx); err != nil {
		log.Fatal(err)
	}
	// Output:
	// mail.example.org POP3 server ready
	// message 1, 29 octets:
	// Subject: hello
	//
	// Hi Alice!
}

// A second session for the same user gets [IN-USE], which the client
// reports as a temporary *pop3.Error.
func ExampleError() {
	ctx := context.Background()
	st, _ := memstore.NewWithUsers(memstore.Options{}, map[string]string{"bob@example.org": "pw"})
	srv := pop3.NewServer(st, pop3.Options{AllowInsecureAuth: true})
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(l)
	defer srv.Close()

	first, _ := pop3.Dial(ctx, l.Addr().String(), pop3.ClientOptions{})
	defer first.Close()
	first.Login(ctx, "bob@example.org", "pw")

	second, _ := pop3.Dial(ctx, l.Addr().String(), pop3.ClientOptions{})
	defer second.Close()
	err := second.Login(ctx, "bob@example.org", "pw")
	var pe *pop3.Error
	if errors.As(err, &pe) {
		fmt.Println(pe.Code, pe.Text, pe.Temporary())
	}
	// Output:
	// IN-USE maildrop already locked true
}

// Shut a server down gracefully: sessions may finish with QUIT until the
// deadline.
func ExampleServer_Shutdown() {
	st := memstore.New(memstore.Options{})
	srv := pop3.NewServer(st, pop3.Options{})
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fmt.Println(srv.Shutdown(ctx))
	fmt.Println(<-done)
	// Output:
	// <nil>
	// pop3: server closed
}
