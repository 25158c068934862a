package testutil

import (
	"net"
	"testing"

	"github.com/stretchr/testify/require"
)

// Listen listens on a free TCP port of 127.0.0.1 and closes the listener
// when the test ends (closing it earlier is fine).
func Listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	return ln
}

// FreePort returns a TCP port of 127.0.0.1 that was free a moment ago, for
// programs that must be told a port rather than handed a listener. Another
// process may take it meanwhile: callers that can should retry.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// HostPort splits a listener address such as "127.0.0.1:2525" into host
// and port for the command line of an external client.
func HostPort(t testing.TB, addr string) (host, port string) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	return host, port
}
