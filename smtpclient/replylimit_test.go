package smtpclient_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks/internal/testutil"
	"github.com/mailblocks/mailblocks/smtpclient"
)

// TestHostileReplies: a server that streams a reply without end, as many
// continuation lines (net/textproto keeps them all) or as one line (which
// go-smtp's line limit already stops), is read only up to a bound: the
// delivery fails temporarily after at most a few megabytes instead of
// reading until the greeting timeout. A large but sane EHLO reply (100
// long extensions) still works.
func TestHostileReplies(t *testing.T) {
	for _, tc := range []struct {
		name, block string // the server sends block again and again
	}{
		{"endless greeting", strings.Repeat("220-"+strings.Repeat("x", 500)+"\r\n", 64)},
		{"endless line", "220 " + strings.Repeat("y", 32<<10)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln := testutil.Listen(t)
			written := make(chan int64, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					written <- -1
					return
				}
				defer c.Close()
				// Bounded here too, so that a client reading forever
				// fails the test instead of hanging it.
				c.SetWriteDeadline(time.Now().Add(30 * time.Second))
				var n int64
				for n < 64<<20 {
					m, err := c.Write([]byte(tc.block))
					n += int64(m)
					if err != nil {
						break
					}
				}
				written <- n
			}()
			_, port := testutil.HostPort(t, ln.Addr().String())
			c := newClient(t, smtpclient.Options{Smarthost: "127.0.0.1:" + port, SmarthostTLS: smtpclient.SmarthostNoTLS})
			st := deliver(t, c, envelope("a@sender.test", "b@dest.test"), testBody)
			_, me := reply(t, st[0].Err)
			assert.True(t, me.Temporary(), "%v", st[0].Err)
			assert.Less(t, <-written, int64(8<<20), "bytes sent before the client gave up")
		})
	}

	t.Run("large EHLO reply", func(t *testing.T) {
		ext := make([]string, 100)
		for i := range ext {
			ext[i] = fmt.Sprintf("X-EXTENSION-%d-%s", i, strings.Repeat("E", 400))
		}
		srv := startFake(t, "127.0.0.1:0", script{Ext: ext})
		c := newClient(t, smtpclient.Options{Smarthost: fmt.Sprintf("127.0.0.1:%d", srv.Port()), SmarthostTLS: smtpclient.SmarthostNoTLS})
		st := deliver(t, c, envelope("a@sender.test", "b@dest.test"), testBody)
		require.NoError(t, st[0].Err)
	})
}
