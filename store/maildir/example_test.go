package maildir_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"strings"

	"github.com/mailblocks/mailblocks/store"
	"github.com/mailblocks/mailblocks/store/maildir"
)

func ExampleOpen() {
	dir, err := os.MkdirTemp("", "mailblocks-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()

	s, err := maildir.Open(dir, maildir.Options{DefaultDomain: "example.org"})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	if err := s.AddUser(ctx, "alice@example.org", "correct horse", store.Quota{}); err != nil {
		log.Fatal(err)
	}

	// The SMTP side: who is this, then deliver.
	l, err := s.LookupRecipient(ctx, "Alice+news@Example.org")
	if err != nil {
		log.Fatal(err)
	}
	uid, err := s.Deliver(ctx, l.Users[0], strings.NewReader("Subject: hello\n\nHi Alice.\n"), store.DeliverOptions{})
	if err != nil {
		log.Fatal(err)
	}

	// The IMAP side: log in, open INBOX, read.
	user, err := s.Authenticate(ctx, "alice", "correct horse")
	if err != nil {
		log.Fatal(err)
	}
	mb, _ := s.Mailbox(ctx, user)
	inbox, _ := mb.Folder(ctx, "INBOX")
	msgs, _ := inbox.List(ctx)
	rc, _ := inbox.Open(ctx, uid)
	body, _ := io.ReadAll(rc)
	rc.Close()
	fmt.Println(user, len(msgs), msgs[0].UID, msgs[0].Size)
	fmt.Printf("%q\n", body)
	// Output:
	// alice@example.org 1 1 29
	// "Subject: hello\r\n\r\nHi Alice.\r\n"
}
