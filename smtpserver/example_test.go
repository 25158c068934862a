package smtpserver_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"strings"

	"github.com/emersion/go-smtp"

	"github.com/mailblocks/mailblocks"
	"github.com/mailblocks/mailblocks/smtpserver"
	"github.com/mailblocks/mailblocks/store"
)

// ourDomain is a Directory that knows one mailbox.
type ourDomain struct{}

func (ourDomain) LookupRecipient(ctx context.Context, addr string) (store.Lookup, error) {
	switch {
	case mailblocks.DomainOf(addr) != "example.org":
		return store.Lookup{Kind: store.LookupNotOurDomain}, nil
	case strings.EqualFold(addr, "alice@example.org"):
		return store.Lookup{Kind: store.LookupLocal, Users: []string{"alice@example.org"}}, nil
	}
	return store.Lookup{Kind: store.LookupUnknown}, nil
}

func ExampleServer() {
	received := make(chan string, 1)
	srv := smtpserver.New(smtpserver.Options{
		Hostname:  "mx.example.org",
		Directory: ourDomain{},
		Handler: smtpserver.HandlerFunc(func(ctx context.Context, env *mailblocks.Envelope, body io.Reader) error {
			b, err := io.ReadAll(body) // a real handler stores and fsyncs
			if err != nil {
				return err
			}
			received <- fmt.Sprintf("from=%s to=%s received-first=%t", env.From, env.Recipients[0].Address,
				strings.HasPrefix(string(b), "Received: from client.example"))
			return nil
		}),
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve(l, smtpserver.MX)
	defer srv.Close()

	c, err := smtp.Dial(l.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	c.Hello("client.example")
	err = c.SendMail("bob@elsewhere.example", []string{"alice@example.org"}, strings.NewReader("Subject: hi\r\n\r\nHello Alice\r\n"))
	fmt.Println("send:", err)
	fmt.Println(<-received)
	err = c.SendMail("bob@elsewhere.example", []string{"carol@elsewhere.example"}, strings.NewReader("Subject: relay?\r\n\r\n"))
	fmt.Println("relay:", err)
	// Output:
	// send: <nil>
	// from=bob@elsewhere.example to=alice@example.org received-first=true
	// relay: SMTP error 554: Relay access denied
}

// A mail server runs several listeners on one engine, sharing the handler,
// the directory, the authenticator and the per-IP limits.
func ExampleServer_ListenAndServe() {
	var (
		dir     smtpserver.Directory     // e.g. a store.Store
		auth    smtpserver.Authenticator // e.g. the same store.Store
		handler smtpserver.Handler       // delivers locally or queues
	)
	srv := smtpserver.New(smtpserver.Options{
		Hostname:      "mail.example.org",
		Directory:     dir,
		Authenticator: auth,
		Handler:       handler,
		// TLSConfig: ..., required by Submission(s)
	})
	err := srv.ListenAndServe(
		smtpserver.Endpoint{Addr: ":25", Mode: smtpserver.MX},
		smtpserver.Endpoint{Addr: ":587", Mode: smtpserver.Submission},
		smtpserver.Endpoint{Addr: ":465", Mode: smtpserver.Submissions},
		smtpserver.Endpoint{Network: "unix", Addr: "/run/mailblocks/lmtp", Mode: smtpserver.LMTP},
	)
	log.Print(err)
}
