package maildir_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks/internal/testutil"
	"github.com/mailblocks/mailblocks/store"
)

func run(t *testing.T, name string, stdin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, testutil.RequireTool(t, name), args...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Env = append(os.Environ(), "MBLAZE="+t.TempDir()) // no user profile
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok {
		t.Fatalf("%s %v: %v: %s", name, args, err, ee.Stderr)
	}
	require.NoError(t, err)
	return string(out)
}

func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

// mailblocks writes, mblaze reads; mblaze changes flags and incorporates,
// mailblocks sees it with the same UIDs; mblaze delivers, mailblocks
// indexes it.
func TestMblazeInterop(t *testing.T) {
	for _, tool := range []string{"mlist", "mflag", "minc", "mhdr", "mdeliver"} {
		testutil.RequireTool(t, tool)
	}
	ctx := context.Background()
	s, dir := newStore(t)
	root := inboxDir(dir)
	in := openFolder(t, s, "INBOX")
	for _, subj := range []string{"first", "second", "third"} {
		deliver(t, s, "From: bob@example.net\nSubject: "+subj+"\n\nhello\n")
	}
	_, err := in.Append(ctx, strings.NewReader("Subject: flagged\n\nx\n"), []string{`\Flagged`}, time.Time{})
	require.NoError(t, err)

	// mblaze lists what mailblocks wrote, with its flags.
	all := lines(run(t, "mlist", "", root))
	require.Len(t, all, 4)
	flagged := lines(run(t, "mlist", "", "-F", root))
	require.Len(t, flagged, 1)
	require.Equal(t, "flagged", strings.TrimSpace(run(t, "mhdr", "", "-h", "subject", flagged[0])))
	require.Len(t, lines(run(t, "mlist", "", "-N", root)), 3, "deliveries wait in new/")

	// minc moves them to cur/ under new names; the UIDs stay.
	run(t, "minc", "", "-q", root)
	require.Empty(t, lines(run(t, "mlist", "", "-N", root)))
	l := list(t, in)
	require.Equal(t, []store.UID{1, 2, 3, 4}, uidsOf(l))

	// mflag -S marks "second" seen by renaming; mailblocks sees it on UID 2.
	var second string
	for _, p := range lines(run(t, "mlist", "", root)) {
		if strings.TrimSpace(run(t, "mhdr", "", "-h", "subject", p)) == "second" {
			second = p
		}
	}
	require.NotEmpty(t, second)
	run(t, "mflag", "", "-S", second)
	l = list(t, in)
	require.Equal(t, []store.UID{1, 2, 3, 4}, uidsOf(l))
	require.Equal(t, []string{`\Seen`}, l[1].Flags)
	require.Empty(t, l[0].Flags)

	// mailblocks marks "third" answered; mblaze sees it.
	_, err = in.SetFlags(ctx, []store.UID{3}, store.FlagsAdd, []string{`\Answered`})
	require.NoError(t, err)
	replied := lines(run(t, "mlist", "", "-R", root))
	require.Len(t, replied, 1)
	require.Equal(t, "third", strings.TrimSpace(run(t, "mhdr", "", "-h", "subject", replied[0])))

	// mdeliver drops a message (with flags) into a mailblocks folder.
	mb, err := s.Mailbox(ctx, testUser)
	require.NoError(t, err)
	require.NoError(t, mb.CreateFolder(ctx, "Lists/Work", ""))
	work := filepath.Join(root, ".Lists.Work")
	run(t, "mdeliver", "Subject: via mdeliver\n\nbody\n", "-c", "-X", "FS", work)
	run(t, "mdeliver", "Subject: plain\n\nbody\n", work)
	wf := openFolder(t, s, "Lists/Work")
	wl := list(t, wf)
	require.Equal(t, []store.UID{1, 2}, uidsOf(wl))
	var subjects []string
	for _, m := range wl {
		body := readAll(t, wf, m.UID)
		require.Equal(t, int64(len(body)), m.Size)
		subjects = append(subjects, strings.SplitN(body, "\r\n", 2)[0])
		if strings.Contains(body, "via mdeliver") {
			require.Equal(t, []string{`\Flagged`, `\Seen`}, m.Flags)
		}
	}
	require.ElementsMatch(t, []string{"Subject: via mdeliver", "Subject: plain"}, subjects)
	require.Len(t, lines(run(t, "mlist", "", work)), 2)

	// Expunge through mailblocks removes the file mblaze sees.
	_, err = in.SetFlags(ctx, []store.UID{1}, store.FlagsAdd, []string{`\Deleted`})
	require.NoError(t, err)
	require.Len(t, lines(run(t, "mlist", "", "-T", root)), 1)
	_, err = in.Expunge(ctx, nil)
	require.NoError(t, err)
	require.Len(t, lines(run(t, "mlist", "", root)), 3)
}
