package postfixtest_test

import (
	"net/smtp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks/internal/postfixtest"
)

// TestLocalDelivery checks the harness itself: a message sent to the
// instance's smtpd lands in the recipient's maildir.
func TestLocalDelivery(t *testing.T) {
	in := postfixtest.Start(t, postfixtest.Options{})
	msg := "From: a@sender.test\r\nTo: box@postfix.test\r\nSubject: harness\r\n\r\nhello postfix\r\n"
	require.NoError(t, smtp.SendMail(in.Addr, nil, "a@sender.test", []string{"box@postfix.test"}, []byte(msg)))
	msgs, err := in.WaitMessages("box", 1, 30*time.Second)
	require.NoError(t, err)
	require.Len(t, msgs, 1)
	require.True(t, strings.Contains(string(msgs[0]), "hello postfix"))
}
