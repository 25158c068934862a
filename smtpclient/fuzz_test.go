package smtpclient_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mailblocks/mailblocks/smtpclient"
)

// pipeDialer connects every dial to an in-memory server that sends script
// (whatever the client says) and then hangs up.
type pipeDialer struct{ script []byte }

func (d pipeDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	client, server := net.Pipe()
	go func() { _, _ = io.Copy(io.Discard, server) }()
	go func() {
		_, _ = server.Write(d.script)
		server.Close()
	}()
	return client, nil
}

// FuzzServerReplies feeds arbitrary server output to the client: it must
// neither panic nor hang, and must answer every recipient with nil or an
// *smtpclient.Error.
func FuzzServerReplies(f *testing.F) {
	f.Add([]byte("220 ok\r\n250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n250 ok\r\n"))
	f.Add([]byte("220-a\r\n220 b\r\n250-x\r\n250-SIZE 10\r\n250 DSN\r\n"))
	f.Add([]byte("220 ok\r\n250-STARTTLS\r\n250 8BITMIME\r\n220 go\r\n\x16\x03\x01garbage"))
	f.Add([]byte("220 ok\r\n250 ok\r\n250 ok\r\n550 5.1.1 no\r\n250 ok\r\n"))
	f.Add([]byte("220 ok\r\n500 what\r\n250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n421 4.4.2 bye\r\n"))
	f.Add([]byte("2"))
	f.Fuzz(func(t *testing.T, script []byte) {
		d := time.Second
		c := smtpclient.New(smtpclient.Options{
			Hostname: "client.test", Dialer: pipeDialer{script}, MaxMessagesPerConn: 1,
			Timeouts: smtpclient.Timeouts{Connect: d, Greeting: d, Mail: d, Rcpt: d, DataInit: d, DataBlock: d, DataTermination: d},
		})
		defer c.Close()
		env := envelope("a@sender.test", "b@[192.0.2.1]", "c@[192.0.2.1]")
		st := c.Deliver(context.Background(), env, strings.NewReader(testBody), int64(len(testBody)))
		if len(st) != 2 {
			t.Fatalf("%d results", len(st))
		}
		for _, s := range st {
			var ce *smtpclient.Error
			if s.Err != nil && !errors.As(s.Err, &ce) {
				t.Fatalf("error of type %T: %v", s.Err, s.Err)
			}
		}
	})
}
