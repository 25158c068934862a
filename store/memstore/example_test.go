package memstore_test

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/mailblocks/mailblocks/store"
	"github.com/mailblocks/mailblocks/store/memstore"
)

func Example() {
	ctx := context.Background()
	s := memstore.New(memstore.Options{DefaultDomain: "example.org"})
	_ = s.AddUser(ctx, "alice@example.org", "secret", store.Quota{})
	_ = s.SetAlias(ctx, "postmaster@example.org", "alice@example.org")

	// The SMTP side: who is this recipient? Then deliver.
	lk, _ := s.LookupRecipient(ctx, "Postmaster@example.org")
	fmt.Println(lk.Kind, lk.Users)
	_, _ = s.Deliver(ctx, lk.Users[0], strings.NewReader("Subject: hi\n\nhello\n"), store.DeliverOptions{})

	// The IMAP side: log in, open INBOX, read.
	user, _ := s.Authenticate(ctx, "alice", "secret")
	mb, _ := s.Mailbox(ctx, user)
	inbox, _ := mb.Folder(ctx, "INBOX")
	msgs, _ := inbox.List(ctx)
	rc, _ := inbox.Open(ctx, msgs[0].UID)
	body, _ := io.ReadAll(rc)
	fmt.Printf("%d octets: %q\n", msgs[0].Size, body)
	// Output:
	// local [alice@example.org]
	// 22 octets: "Subject: hi\r\n\r\nhello\r\n"
}
