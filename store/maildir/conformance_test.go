package maildir_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks/store/maildir"
	"github.com/mailblocks/mailblocks/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Harness {
		dir := t.TempDir()
		s, err := maildir.Open(dir, conformanceOptions())
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		cur := s
		return storetest.Harness{
			Store: s,
			Reopen: func(t *testing.T) storetest.Store {
				require.NoError(t, cur.Close())
				s2, err := maildir.Open(dir, conformanceOptions())
				require.NoError(t, err)
				cur = s2
				t.Cleanup(func() { s2.Close() })
				return s2
			},
		}
	})
}

func conformanceOptions() maildir.Options {
	o := testOptions()
	o.DefaultDomain = storetest.DefaultDomain
	// Events of other instances are covered by maildir's own tests; a
	// short poll keeps the suite's waits short.
	o.PollInterval = 100 * time.Millisecond
	// The suite checks semantics, which fsync does not change; the
	// maildir tests of this package run with fsync on.
	o.NoFsync = true
	return o
}
