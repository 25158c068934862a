package maildir_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks/store"
	"github.com/mailblocks/mailblocks/store/maildir"
)

// TestHelperProcess is not a test: re-executed by TestCrossProcess, it
// delivers messages into the store named by the environment and prints
// their UIDs.
func TestHelperProcess(t *testing.T) {
	dir := os.Getenv("MAILDIR_HELPER_DIR")
	if dir == "" {
		return
	}
	n, _ := strconv.Atoi(os.Getenv("MAILDIR_HELPER_N"))
	s, err := maildir.Open(dir, testOptions())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx := context.Background()
	f := openFolder(t, s, "INBOX")
	for i := range n {
		uid, err := s.Deliver(ctx, testUser, strings.NewReader(fmt.Sprintf("Subject: child %d\n\nx\n", i)), store.DeliverOptions{})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Println(uid)
		if i%5 == 0 {
			// Flag changes and scans interleave with the other writers.
			if _, err := f.SetFlags(ctx, []store.UID{uid}, store.FlagsAdd, []string{`\Seen`}); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(2)
			}
		}
	}
	os.Exit(0)
}

// Real processes deliver into the same mailbox at the same time as this
// one: every message gets a distinct UID and everybody agrees on them.
func TestCrossProcess(t *testing.T) {
	ctx := context.Background()
	s, dir := newStore(t)
	const children, per = 2, 30
	var wg sync.WaitGroup
	outs := make([]bytes.Buffer, children)
	errs := make([]error, children)
	for i := range children {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(cctx, os.Args[0], "-test.run=^TestHelperProcess$")
			cmd.Env = append(os.Environ(), "MAILDIR_HELPER_DIR="+dir, "MAILDIR_HELPER_N="+strconv.Itoa(per))
			cmd.Stdout = &outs[i]
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Run(); err != nil {
				errs[i] = fmt.Errorf("%w: %s", err, stderr.String())
			}
		})
	}
	var mine []store.UID
	for i := range per {
		mine = append(mine, deliver(t, s, fmt.Sprintf("Subject: parent %d\n\nx\n", i)))
	}
	wg.Wait()
	seen := map[store.UID]bool{}
	for _, u := range mine {
		seen[u] = true
	}
	for i := range children {
		require.NoError(t, errs[i])
		sc := bufio.NewScanner(&outs[i])
		count := 0
		for sc.Scan() {
			u, err := strconv.Atoi(sc.Text())
			require.NoError(t, err)
			require.False(t, seen[store.UID(u)], "UID %d given twice", u)
			seen[store.UID(u)] = true
			count++
		}
		require.Equal(t, per, count)
	}
	l := list(t, openFolder(t, s, "INBOX"))
	require.Len(t, l, (children+1)*per)
	seenFlags := 0
	for _, m := range l {
		require.True(t, seen[m.UID])
		if store.HasFlag(m.Flags, store.FlagSeen) {
			seenFlags++
		}
	}
	require.Equal(t, children*(per/5), seenFlags)
	s2, err := maildir.Open(dir, testOptions())
	require.NoError(t, err)
	require.Equal(t, l, list(t, openFolder(t, s2, "INBOX")))
}
