package smtpserver

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks"
)

// fsyncHandler writes each message to its own file and fsyncs it, like a
// store or a queue would before acknowledging.
type fsyncHandler struct {
	dir string
	n   atomic.Int64
}

func (h *fsyncHandler) Handle(ctx context.Context, env *mailblocks.Envelope, body io.Reader) error {
	f, err := os.Create(filepath.Join(h.dir, strconv.FormatInt(h.n.Add(1), 10)))
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.Copy(f, body); err != nil {
		return err
	}
	return f.Sync()
}

var msg4K = "From: a@remote.test\r\nTo: alice@example.org\r\nSubject: bench\r\n\r\n" +
	strings.Repeat(strings.Repeat("x", 62)+"\r\n", 63)

// BenchmarkDeliver measures messages per second over loopback: 4 KB
// messages, 1 or 32 clients with one connection each, into a handler that
// fsyncs every message.
func BenchmarkDeliver(b *testing.B) {
	for _, clients := range []int{1, 32} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			opts := testOptions(b, nil)
			opts.Logger = nil
			opts.Handler = &fsyncHandler{dir: b.TempDir()}
			_, addr := start(b, opts, MX)
			conns := make([]*smtp.Client, clients)
			for i := range conns {
				c, err := smtp.Dial(addr)
				require.NoError(b, err)
				require.NoError(b, c.Hello("bench.test"))
				conns[i] = c
			}
			var next atomic.Int64
			b.SetBytes(int64(len(msg4K)))
			b.ResetTimer()
			var wg sync.WaitGroup
			for _, c := range conns {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						if err := c.SendMail("a@remote.test", []string{"alice@example.org"}, strings.NewReader(msg4K)); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			b.StopTimer()
			for _, c := range conns {
				c.Close()
			}
		})
	}
}

// BenchmarkFsync is the raw rate of the disk for the same work without
// SMTP: create a file, write 4 KB, fsync.
func BenchmarkFsync(b *testing.B) {
	h := &fsyncHandler{dir: b.TempDir()}
	b.SetBytes(int64(len(msg4K)))
	for b.Loop() {
		if err := h.Handle(context.Background(), nil, strings.NewReader(msg4K)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "fsyncs/s")
}

// BenchmarkIdleConnections reports the memory taken by 1,000 idle sessions
// (greeted, EHLO done): growth of the process RSS and of the Go heap and
// stacks, divided by 1,000. The client ends are in the same process but
// cost little (a socket and a 16-byte buffer). Run it with -benchtime 1x.
func BenchmarkIdleConnections(b *testing.B) {
	const n = 1000
	for b.Loop() {
		opts := testOptions(b, nil)
		opts.Logger = nil
		opts.MaxConnectionsPerIP = -1
		srv, addr := start(b, opts, MX)
		debug.FreeOSMemory()
		rss0, heap0 := memUsage()
		conns := make([]net.Conn, 0, n)
		for range n {
			c, err := net.Dial("tcp", addr)
			require.NoError(b, err)
			conns = append(conns, c)
			br := bufio.NewReaderSize(c, 16)
			_, err = br.ReadString('\n') // greeting
			require.NoError(b, err)
			_, err = c.Write([]byte("EHLO bench.test\r\n"))
			require.NoError(b, err)
			for {
				line, err := br.ReadString('\n')
				require.NoError(b, err)
				if strings.HasPrefix(line, "250 ") {
					break
				}
			}
		}
		for openSessions(addr) < n {
			time.Sleep(10 * time.Millisecond)
		}
		debug.FreeOSMemory()
		rss1, heap1 := memUsage()
		b.ReportMetric(float64(rss1-rss0)/n, "rss-bytes/conn")
		b.ReportMetric(float64(heap1-heap0)/n, "go-bytes/conn")
		for _, c := range conns {
			c.Close()
		}
		srv.Close()
	}
}

// memUsage returns the resident set size (Linux) and the Go heap+stacks.
func memUsage() (rss, goMem int64) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	goMem = int64(ms.HeapInuse + ms.StackInuse)
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, goMem
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024, goMem
		}
	}
	return 0, goMem
}

// BenchmarkGuardNormalize measures the message stream check with
// BareLFNormalize on a message whose every line ends in a bare LF.
func BenchmarkGuardNormalize(b *testing.B) {
	msg := strings.Repeat("a line of text with a bare LF ending\n", 30000)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		g := &guard{r: strings.NewReader(msg), normalize: true}
		if _, err := io.Copy(io.Discard, g); err != nil {
			b.Fatal(err)
		}
	}
}
