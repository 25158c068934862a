package imapbackend_test

import (
	"crypto/tls"
	"log"
	"net"

	"github.com/mailblocks/mailblocks/imapbackend"
	"github.com/mailblocks/mailblocks/store/memstore"
)

// An IMAP server over an in-memory store. With a certificate in
// TLSConfig it offers STARTTLS on this listener; ListenAndServeTLS gives
// implicit TLS (port 993 style).
func ExampleNewServer() {
	st, err := memstore.NewWithUsers(memstore.Options{DefaultDomain: "example.org"},
		map[string]string{"alice@example.org": "secret"})
	if err != nil {
		log.Fatal(err)
	}
	srv := imapbackend.NewServer(st, imapbackend.Options{
		TLSConfig: &tls.Config{ /* Certificates: ... */ },
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve(ln)
	// ... later:
	srv.Close()
	// Output:
}
