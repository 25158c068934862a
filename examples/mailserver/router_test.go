package main

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks"
	"github.com/mailblocks/mailblocks/store"
	"github.com/mailblocks/mailblocks/store/maildir"
	"github.com/mailblocks/mailblocks/store/memstore"
)

// TestRouterAllOrNothing: over SMTP a message has one reply, so when one
// local recipient is over quota (or unknown by the time of DATA) the
// message is refused before any mailbox gets a copy; over LMTP each
// recipient has its own reply and the others get theirs.
func TestRouterAllOrNothing(t *testing.T) {
	ctx := context.Background()
	body := "Subject: big\r\n\r\n" + strings.Repeat("0123456789\r\n", 400)
	for _, tc := range []struct {
		name  string
		rcpts []string
		lmtp  bool
		want  error // Handle's error, or the second recipient's for LMTP
		rest  int   // messages stored
	}{
		{"over quota", []string{"a@example.test", "q@example.test"}, false, mailblocks.ErrMailboxFull, 0},
		{"over quota first", []string{"q@example.test", "a@example.test"}, false, mailblocks.ErrMailboxFull, 0},
		{"unknown", []string{"a@example.test", "gone@example.test"}, false, mailblocks.ErrNoSuchUser, 0},
		{"fits", []string{"a@example.test", "b@example.test"}, false, nil, 2},
		{"LMTP over quota", []string{"a@example.test", "q@example.test"}, true, mailblocks.ErrMailboxFull, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dataDir := t.TempDir()
			st, err := maildir.Open(filepath.Join(dataDir, "store"), maildir.Options{
				DefaultDomain: "example.test", NoFsync: true, HashPassword: memstore.InsecureFastHash,
			})
			require.NoError(t, err)
			t.Cleanup(func() { st.Close() })
			require.NoError(t, st.AddDomain(ctx, "example.test"))
			for u, q := range map[string]int64{"a@example.test": 0, "b@example.test": 0, "q@example.test": 3000} {
				require.NoError(t, st.AddUser(ctx, u, "pw", store.Quota{Bytes: q}))
			}
			rt := &router{dir: st, deliver: st, spoolDir: t.TempDir(), log: slog.New(slog.DiscardHandler),
				enqueue: func(context.Context, *mailblocks.Envelope, io.Reader) (string, error) {
					t.Error("nothing is remote")
					return "", mailblocks.ErrTemporary
				}}
			env := &mailblocks.Envelope{ID: "test", From: "bob@remote.test"}
			for _, r := range tc.rcpts {
				env.Recipients = append(env.Recipients, mailblocks.Recipient{Address: r})
			}
			if tc.lmtp {
				errs := rt.HandleLMTP(ctx, env, strings.NewReader(body))
				require.Len(t, errs, 2)
				assert.NoError(t, errs[0])
				assert.ErrorIs(t, errs[1], tc.want)
			} else {
				err := rt.Handle(ctx, env, strings.NewReader(body))
				if tc.want == nil {
					assert.NoError(t, err)
				} else {
					assert.ErrorIs(t, err, tc.want)
				}
			}
			assert.Len(t, storedMessages(t, dataDir), tc.rest)
		})
	}
}
