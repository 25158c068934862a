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

// A server refuses an over-quota recipient at RCPT by testing its
// directory for the optional store.QuotaChecker.
func ExampleStore_CheckQuota() {
	ctx := context.Background()
	s := memstore.New(memstore.Options{HashPassword: memstore.InsecureFastHash})
	_ = s.AddUser(ctx, "bob@example.org", "", store.Quota{Bytes: 1000})

	var dir store.Directory = s
	if qc, ok := dir.(store.QuotaChecker); ok {
		// The size is what the client declared with MAIL FROM SIZE=
		// (RFC 1870), 0 when it did not.
		fmt.Println(qc.CheckQuota(ctx, "bob@example.org", 500))
		fmt.Println(qc.CheckQuota(ctx, "bob@example.org", 5000))
	}
	// Output:
	// <nil>
	// memstore: check quota of bob@example.org: 552 5.2.2 Mailbox full: quota exceeded
}
