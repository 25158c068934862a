package smtpclient_test

import (
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks"
	"github.com/mailblocks/mailblocks/internal/postfixtest"
	"github.com/mailblocks/mailblocks/resolver"
	"github.com/mailblocks/mailblocks/smtpclient"
)

// TestPostfixSmtpd delivers into a real Postfix smtpd (a private instance
// on loopback): per-recipient results against Postfix's own recipient
// check, and the message in the recipient's maildir.
func TestPostfixSmtpd(t *testing.T) {
	in := postfixtest.Start(t, postfixtest.Options{})
	_, portStr, err := net.SplitHostPort(in.Addr)
	require.NoError(t, err)
	port, err := strconv.Atoi(portStr)
	require.NoError(t, err)
	m := &resolver.Mock{
		MX: map[string][]resolver.MX{in.Domain: {{Host: "mx." + in.Domain, Pref: 10}}},
		A:  map[string][]string{"mx." + in.Domain: {"127.0.0.1"}},
	}
	c := newClient(t, smtpclient.Options{Resolver: m, Port: port})
	env := envelope("sender@client.test", "box@"+in.Domain, "nobody@"+in.Domain)
	env.Recipients[0].Notify = []mailblocks.DSNNotify{mailblocks.NotifySuccess, mailblocks.NotifyFailure}
	body := "From: sender@client.test\r\nTo: box@" + in.Domain + "\r\nSubject: from smtpclient\r\n\r\nhello postfix from smtpclient\r\n"
	st := deliver(t, c, env, body)

	require.NoError(t, st[0].Err)
	assert.True(t, st[0].RemoteDSN, "Postfix advertises DSN")
	assert.Equal(t, "mx."+in.Domain, st[0].RemoteHost)

	ce, me := reply(t, st[1].Err)
	assert.Equal(t, "RCPT TO", ce.Command)
	assert.Equal(t, 550, me.Code)
	assert.Equal(t, "5.1.1", me.Enhanced.String())
	assert.False(t, me.Temporary())
	assert.Contains(t, me.Message, "User unknown")

	msgs, err := in.WaitMessages("box", 1, 30*time.Second)
	require.NoError(t, err, in.Log())
	require.Len(t, msgs, 1)
	assert.True(t, strings.Contains(string(msgs[0]), "hello postfix from smtpclient"))
	assert.Contains(t, string(msgs[0]), "Received: from client.test (", "our EHLO name")
}
