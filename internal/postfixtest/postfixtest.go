// Package postfixtest runs a private Postfix instance on loopback for
// interoperability tests: its own configuration, queue and maildir under a
// temporary directory, its smtpd on a free 127.0.0.1 port, mail for its
// virtual domain delivered to maildirs, and everything else relayed to a
// host:port of the test's choosing (a mailblocks server).
//
// It needs the Debian package postfix (master, smtpd, qmgr… under
// /usr/lib/postfix/sbin) and root, as CI has. The system's own Postfix
// instance is neither used nor touched.
package postfixtest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mailblocks/mailblocks/internal/testutil"
)

// DaemonDir is where Debian installs Postfix's daemons.
const DaemonDir = "/usr/lib/postfix/sbin"

// Options configure an instance.
type Options struct {
	// Domain is the virtual mailbox domain this Postfix delivers locally;
	// default "postfix.test".
	Domain string
	// Relay is the host:port every other domain is relayed to (Postfix
	// relayhost); empty means no relay: mail for other domains fails at
	// once, without any DNS lookup.
	Relay string
	// Mailboxes are the local parts of Domain that have a maildir;
	// default ["box"].
	Mailboxes []string
}

// Instance is a running private Postfix.
type Instance struct {
	// Addr is the host:port of its smtpd.
	Addr string
	// Domain is its local virtual domain.
	Domain string
	// Dir is the root of its files.
	Dir string

	cmd *exec.Cmd
}

// Available reports whether Postfix can be run here, and why not.
func Available() error {
	if _, err := os.Stat(filepath.Join(DaemonDir, "master")); err != nil {
		return fmt.Errorf("postfixtest: postfix is not installed (Debian package postfix): %w", err)
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("postfixtest: a private Postfix instance needs root")
	}
	if _, err := user.Lookup("postfix"); err != nil {
		return fmt.Errorf("postfixtest: no postfix user: %w", err)
	}
	return nil
}

// Require fails the test when Postfix is unavailable in CI (CI set) and
// skips it elsewhere.
func Require(t testing.TB) {
	t.Helper()
	if err := Available(); err != nil {
		testutil.Unavailable(t, err)
	}
}

// Start configures and starts an instance that is stopped when the test ends.
func Start(t testing.TB, opts Options) *Instance {
	t.Helper()
	Require(t)
	if opts.Domain == "" {
		opts.Domain = "postfix.test"
	}
	if len(opts.Mailboxes) == 0 {
		opts.Mailboxes = []string{"box"}
	}
	dir, err := os.MkdirTemp("", "postfixtest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("postfixtest: keeping %s for inspection", dir)
			return
		}
		os.RemoveAll(dir)
	})
	// The queue must be reachable by the unprivileged postfix user.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	in := &Instance{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Domain: opts.Domain, Dir: dir}
	if err := in.configure(opts); err != nil {
		t.Fatal(err)
	}
	if err := in.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(in.stop)
	return in
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (in *Instance) configure(opts Options) error {
	pu, err := user.Lookup("postfix")
	if err != nil {
		return err
	}
	uid, _ := strconv.Atoi(pu.Uid)
	gid, _ := strconv.Atoi(pu.Gid)
	postdrop := gid
	if g, err := user.LookupGroup("postdrop"); err == nil {
		postdrop, _ = strconv.Atoi(g.Gid)
	}

	conf := filepath.Join(in.Dir, "conf")
	queue := filepath.Join(in.Dir, "queue")
	data := filepath.Join(in.Dir, "data")
	mail := filepath.Join(in.Dir, "maildir")
	for _, d := range []string{conf, queue, data, mail, filepath.Join(queue, "pid")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	// The queue layout that "postfix check" would create (postfix-files).
	for _, d := range []string{"active", "bounce", "corrupt", "defer", "deferred", "flush", "hold", "incoming", "private", "saved", "trace"} {
		p := filepath.Join(queue, d)
		if err := os.Mkdir(p, 0o700); err != nil {
			return err
		}
		if err := os.Chown(p, uid, -1); err != nil {
			return err
		}
	}
	for d, mode := range map[string]os.FileMode{"maildrop": 0o730, "public": 0o710} {
		p := filepath.Join(queue, d)
		if err := os.Mkdir(p, 0o700); err != nil {
			return err
		}
		if err := os.Chown(p, uid, postdrop); err != nil {
			return err
		}
		if err := os.Chmod(p, mode); err != nil {
			return err
		}
	}
	for _, p := range []string{data, mail} {
		if err := os.Chown(p, uid, gid); err != nil {
			return err
		}
	}

	relay, transport := "", "error:5.3.0 no relay in this test"
	if opts.Relay != "" {
		transport = "smtp"
		host, port, err := net.SplitHostPort(opts.Relay)
		if err != nil {
			return fmt.Errorf("postfixtest: relay %q: %w", opts.Relay, err)
		}
		relay = fmt.Sprintf("[%s]:%s", host, port)
	}
	mainCF := fmt.Sprintf(`compatibility_level = 3.6
queue_directory = %[1]s
data_directory = %[2]s
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.%[3]s
mydomain = %[3]s
myorigin = %[3]s
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost = %[4]s
smtp_dns_support_level = disabled
disable_dns_lookups = yes
smtp_host_lookup = native
virtual_mailbox_domains = %[3]s
virtual_mailbox_base = %[5]s
virtual_mailbox_maps = texthash:%[6]s
default_transport = %[11]s
virtual_uid_maps = static:%[7]d
virtual_gid_maps = static:%[8]d
maillog_file = %[9]s
maillog_file_prefixes = %[10]s
alias_maps =
alias_database =
biff = no
smtpd_banner = $myhostname ESMTP Postfix
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
import_environment = MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ LANG=C
`, queue, data, opts.Domain, relay, mail, filepath.Join(conf, "vmailbox"), uid, gid,
		filepath.Join(in.Dir, "maillog"), in.Dir, transport)
	// Each mailbox gets its own maildir "<local>/" (the trailing slash
	// selects maildir format in virtual(8)).
	var vmailbox strings.Builder
	for _, local := range opts.Mailboxes {
		fmt.Fprintf(&vmailbox, "%s@%s %s/\n", local, opts.Domain, local)
	}
	masterCF := in.Addr + " inet n - n - - smtpd\n" + `pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`
	files := map[string]string{"main.cf": mainCF, "master.cf": masterCF, "vmailbox": vmailbox.String()}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(conf, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func (in *Instance) start() error {
	conf := filepath.Join(in.Dir, "conf")
	cmd := exec.Command(filepath.Join(DaemonDir, "master"), "-c", conf, "-d")
	cmd.Dir = filepath.Join(in.Dir, "queue")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// Its own process group, so that stop ends the daemons it forked.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("postfixtest: start master: %w", err)
	}
	in.cmd = cmd
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("postfixtest: master exited (%v): %s\nmaillog:\n%s", err, out.String(), in.Log())
		default:
		}
		if c, err := net.DialTimeout("tcp", in.Addr, time.Second); err == nil {
			c.Close()
			go func() { <-exited }()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("postfixtest: smtpd did not listen on %s within 20s; maillog:\n%s", in.Addr, in.Log())
}

func (in *Instance) stop() {
	if in.cmd == nil || in.cmd.Process == nil {
		return
	}
	pgid := in.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if err := syscall.Kill(-pgid, 0); err != nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// Log returns Postfix's log so far.
func (in *Instance) Log() string {
	b, _ := os.ReadFile(filepath.Join(in.Dir, "maillog"))
	return string(b)
}

// Maildir returns the maildir of a local part of Domain.
func (in *Instance) Maildir(local string) string {
	return filepath.Join(in.Dir, "maildir", local)
}

// Messages returns the messages delivered to a local part, oldest first by
// file name.
func (in *Instance) Messages(local string) ([][]byte, error) {
	var msgs [][]byte
	for _, sub := range []string{"new", "cur"} {
		d := filepath.Join(in.Maildir(local), sub)
		entries, err := os.ReadDir(d)
		if err != nil {
			if os.IsNotExist(err) {
				continue
			}
			return nil, err
		}
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(d, e.Name()))
			if err != nil {
				return nil, err
			}
			msgs = append(msgs, b)
		}
	}
	return msgs, nil
}

// WaitMessages waits until local has at least n messages or timeout passes.
func (in *Instance) WaitMessages(local string, n int, timeout time.Duration) ([][]byte, error) {
	deadline := time.Now().Add(timeout)
	for {
		msgs, err := in.Messages(local)
		if err != nil {
			return nil, err
		}
		if len(msgs) >= n {
			return msgs, nil
		}
		if time.Now().After(deadline) {
			return msgs, fmt.Errorf("postfixtest: %d of %d messages for %s after %v; maillog tail:\n%s",
				len(msgs), n, local, timeout, tail(in.Log(), 30))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
