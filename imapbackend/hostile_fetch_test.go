package imapbackend

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Hostile-client tests of FETCH and SEARCH arguments and contents (the
// helpers are in hostile_test.go).

func TestHostileSearchNesting(t *testing.T) {
	ts := newTestServer(t, Options{InsecureAuth: true})
	ts.deliver(t, "INBOX", msgPlain)
	ts.deliver(t, "INBOX", msgMultipart)
	rc := hostileRaw(t, ts.addr)
	rc.login()
	rc.want("OK", "SELECT INBOX")
	// go-imap parses at most 999 nested lists.
	un := rc.want("OK", "SEARCH "+strings.Repeat("(", 998)+"SUBJECT hello"+strings.Repeat(")", 998))
	assert.Equal(t, []string{"* SEARCH 1"}, un)
	un = rc.want("OK", "SEARCH "+strings.Repeat("NOT ", 1000)+"SUBJECT hello")
	assert.Equal(t, []string{"* SEARCH 1"}, un)
	un = rc.want("OK", "SEARCH "+strings.Repeat("NOT ", 1001)+"SUBJECT hello")
	assert.Equal(t, []string{"* SEARCH 2"}, un)
	un = rc.want("OK", "SEARCH "+strings.Repeat("OR ALL ", 1000)+"ALL")
	assert.Equal(t, []string{"* SEARCH 1 2"}, un)
	// NOT chains as long as a 50 KiB command allows.
	un = rc.want("OK", "SEARCH "+strings.Repeat("NOT ", 12000)+"ALL")
	assert.Equal(t, []string{"* SEARCH 1 2"}, un)
	// Deeper nesting is refused (go-imap beta.8 answers NO [SERVERBUG]
	// where BAD would be right) and the session goes on.
	for _, depth := range []int{1000, 20000} {
		rc.tag++
		tag := fmt.Sprintf("H%d", rc.tag)
		un, got := rc.do(tag, "SEARCH "+strings.Repeat("(", depth)+"ALL"+strings.Repeat(")", depth))
		assert.Empty(t, un)
		assert.Regexp(t, `^(BAD|NO) `, got)
	}
	rc.want("BAD", "SEARCH "+strings.Repeat("(", 500)+"ALL")
	rc.want("OK", "NOOP")
}

func TestHostileFetchSets(t *testing.T) {
	forEachStoreOpts(t, Options{InsecureAuth: true}, func(t *testing.T, ts *testServer) {
		rc := hostileRaw(t, ts.addr)
		rc.login()
		rc.want("OK", "CREATE Empty")
		rc.want("OK", "SELECT Empty")
		// Empty mailbox: "*" has no value; UID sets match nothing.
		assert.Empty(t, rc.want("OK", "UID FETCH 1:* (UID)"))
		assert.Empty(t, rc.want("OK", "UID FETCH 4294967295:1 (UID)"))
		assert.Empty(t, rc.want("OK", "UID FETCH * (UID)"))
		// Sequence numbers beyond the mailbox are ignored.
		assert.Empty(t, rc.want("OK", "FETCH 1:* (UID)"))
		assert.Empty(t, rc.want("OK", "FETCH * (UID)"))
		assert.Empty(t, rc.want("OK", "FETCH 1 (UID)"))

		for range 3 {
			ts.deliver(t, "INBOX", msgPlain)
		}
		rc.want("OK", "SELECT INBOX")
		all := []string{"* 1 FETCH (UID 1)", "* 2 FETCH (UID 2)", "* 3 FETCH (UID 3)"}
		assert.Equal(t, all, rc.want("OK", "UID FETCH 4294967295:1 (UID)"))
		assert.Equal(t, all, rc.want("OK", "UID FETCH 1:4294967295 (UID)"))
		assert.Equal(t, all, rc.want("OK", "FETCH *:1 (UID)"))
		assert.Equal(t, all, rc.want("OK", "FETCH 3,1:2,2,1 (UID)"))
		// RFC 9051 6.4.4.2: n:* with n beyond the largest UID is *.
		assert.Equal(t, all[2:], rc.want("OK", "UID FETCH 4294967295:* (UID)"))
		assert.Equal(t, all[2:], rc.want("OK", "UID FETCH * (UID)"))
		assert.Equal(t, all[2:], rc.want("OK", "FETCH * (UID)"))
		assert.Empty(t, rc.want("OK", "UID FETCH 4294967295 (UID)"))
		assert.Empty(t, rc.want("OK", "UID FETCH 4:100 (UID)"))
		assert.Empty(t, rc.want("OK", "FETCH 4 (UID)"))
		assert.Equal(t, all[1:], rc.want("OK", "FETCH 2:4294967295 (UID)"))
		// go-imap beta.8 answers NO [SERVERBUG] for a 0 in a set, where
		// BAD would be right; either way nothing is fetched.
		for _, cmd := range []string{"FETCH 0 (UID)", "UID FETCH 0 (UID)", "FETCH 0:* (UID)", "FETCH 4294967296 (UID)", "FETCH -1 (UID)", "FETCH 1:2:3 (UID)"} {
			rc.tag++
			tag := fmt.Sprintf("H%d", rc.tag)
			un, got := rc.do(tag, cmd)
			assert.Empty(t, un, cmd)
			assert.Regexp(t, `^(NO|BAD) `, got, cmd)
		}
		// Everything still there and unflagged by the failed commands.
		assert.Equal(t, []string{"* 1 FETCH (UID 1 FLAGS ())", "* 2 FETCH (UID 2 FLAGS ())", "* 3 FETCH (UID 3 FLAGS ())"},
			rc.want("OK", "FETCH 1:* (FLAGS)"))
	})
}

func TestHostileFetchSections(t *testing.T) {
	ts := newTestServer(t, Options{InsecureAuth: true})
	ts.deliver(t, "INBOX", crlf("Subject: s\n\nbody\n"), `\Seen`)
	ts.deliver(t, "INBOX", msgMultipart, `\Seen`)
	rc := hostileRaw(t, ts.addr)
	rc.login()
	rc.want("OK", "EXAMINE INBOX")
	// Parts that do not exist are empty (RFC 9051 6.4.5 leaves it to
	// the server; go-imap writes an empty literal); offsets beyond the
	// end give empty strings.
	for _, tc := range []struct{ cmd, want string }{
		{"FETCH 1 BODY[1.2.3.4.5.6.7.8.9.10]", "* 1 FETCH (UID 1 BODY[1.2.3.4.5.6.7.8.9.10] {0}"},
		{"FETCH 1 BODY[1]", "* 1 FETCH (UID 1 BODY[1] {6}"},
		{"FETCH 1 BODY[2]", "* 1 FETCH (UID 1 BODY[2] {0}"},
		{"FETCH 2 BODY[4.1.1.1]", "* 2 FETCH (UID 2 BODY[4.1.1.1] {0}"},
		{"FETCH 2 BODY[9]", "* 2 FETCH (UID 2 BODY[9] {0}"},
		{"FETCH 1 BODY[]<1000000.10>", "* 1 FETCH (UID 1 BODY[]<1000000> {0}"},
		{"FETCH 1 BODY[]<4294967295.4294967295>", "* 1 FETCH (UID 1 BODY[]<4294967295> {0}"},
		{"FETCH 1 BODY[]<20.4294967295>", "* 1 FETCH (UID 1 BODY[]<20> {0}"},
		{"FETCH 1 BODY[]<14.4294967295>", "* 1 FETCH (UID 1 BODY[]<14> {6}"},
		{"FETCH 1 BODY[1]<5.1>", "* 1 FETCH (UID 1 BODY[1]<5> {1}"},
		{"FETCH 1 BODY[1.2.3.4.5.6.7.8.9.10]<0.5>", "* 1 FETCH (UID 1 BODY[1.2.3.4.5.6.7.8.9.10]<0> {0}"},
	} {
		un := rc.want("OK", tc.cmd)
		require.NotEmpty(t, un, tc.cmd)
		assert.Equal(t, tc.want, un[0], tc.cmd)
	}
	for _, cmd := range []string{"FETCH 1 BINARY[1.2.3]", "FETCH 1 BINARY.SIZE[7]", "FETCH 2 BINARY[3.1]"} {
		rc.tag++
		tag := fmt.Sprintf("H%d", rc.tag)
		un, got := rc.do(tag, cmd)
		t.Logf("%s: %q %q", cmd, un, got)
		assert.Regexp(t, `^(OK|NO|BAD) `, got)
	}
	rc.want("BAD", "FETCH 1 BODY[]<1000000>")
	rc.want("BAD", "FETCH 1 BODY[]<4294967296>")
	rc.want("BAD", "FETCH 1 BODY[1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17.18.19.20.21.22.23.24.25.26.27.28.29.30.31.32.33.34.35.36.37.38.39.40.41.42.43.44.45.46.47.48.49.50.51.52.53.54.55.56.57.58.59.60.61.62.63.64.65.66.67.68.69.70.71.72.73.74.75.76.77.78.79.80.81.82.83.84.85.86.87.88.89.90.91.92.93.94.95.96.97.98.99.100.X]")
	rc.want("OK", "NOOP")
}

// TestHostileBinaryUndecodable: BINARY of a part whose
// Content-Transfer-Encoding is unknown or whose content does not decode
// is NO [UNKNOWN-CTE] (RFC 3516 4.2), not an empty part that a client
// would take for the content.
func TestHostileBinaryUndecodable(t *testing.T) {
	ts := newTestServer(t, Options{InsecureAuth: true})
	ts.deliver(t, "INBOX", crlf("Subject: a\nContent-Transfer-Encoding: base64\n\n!!!!not base64 at all\n"))
	ts.deliver(t, "INBOX", crlf("Subject: b\nContent-Transfer-Encoding: x-weird\n\nabc\n"))
	ts.deliver(t, "INBOX", crlf("Subject: c\nContent-Transfer-Encoding: base64\n\naGVs\nbG8=\n"))
	ts.deliver(t, "INBOX", crlf("Subject: d\nContent-Transfer-Encoding: base64\n\n\n"))
	ts.deliver(t, "INBOX", crlf(`Subject: e
Content-Type: multipart/mixed; boundary=x

--x
Content-Transfer-Encoding: base64

*** broken ***
--x
Content-Transfer-Encoding: quoted-printable

caf=C3=A9
--x
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

caf=E9
--x--
`))
	rc := hostileRaw(t, ts.addr)
	rc.login()
	rc.want("OK", "EXAMINE INBOX")
	for _, cmd := range []string{"FETCH 1 BINARY[1]", "FETCH 1 BINARY.SIZE[1]", "FETCH 1 BINARY[]",
		"FETCH 2 BINARY[1]", "FETCH 2 BINARY.SIZE[]", "FETCH 5 BINARY[1]", "UID FETCH 5 BINARY.PEEK[1]<0.3>"} {
		rc.want("NO [UNKNOWN-CTE]", cmd)
	}
	for _, tc := range []struct{ cmd, want string }{
		{"FETCH 3 BINARY[1]", "* 3 FETCH (UID 3 BINARY[1] ~{5}"},
		{"FETCH 3 BINARY.SIZE[1]", "* 3 FETCH (UID 3 BINARY.SIZE[1] 5)"},
		{"FETCH 4 BINARY[1]", "* 4 FETCH (UID 4 BINARY[1] ~{0}"},
		{"FETCH 5 BINARY[2]", "* 5 FETCH (UID 5 BINARY[2] ~{5}"},
		{"FETCH 5 BINARY[3]", "* 5 FETCH (UID 5 BINARY[3] ~{4}"},
		{"FETCH 5 BINARY.SIZE[3]", "* 5 FETCH (UID 5 BINARY.SIZE[3] 4)"},
		{"FETCH 5 BINARY[4]", "* 5 FETCH (UID 5 BINARY[4] ~{0}"},
		{"FETCH 5 BINARY[3]<1.2>", "* 5 FETCH (UID 5 BINARY[3] ~{2}"}, // go-imap omits the <1>
		{"FETCH 3 BINARY[]", "* 3 FETCH (UID 3 BINARY[] ~{54}"},
		{"FETCH 1 BODY.PEEK[1]", "* 1 FETCH (UID 1 BODY[1] {23}"},
		{"FETCH 2 BODY.PEEK[TEXT]", "* 2 FETCH (UID 2 BODY[TEXT] {5}"},
	} {
		un := rc.want("OK", tc.cmd)
		require.NotEmpty(t, un, tc.cmd)
		assert.Equal(t, tc.want, un[0], tc.cmd)
	}
}

// TestHostileSearchUnknownCharset: a text part in a charset go-message
// cannot convert (ISO-8859-1 without go-message/charset) is still
// searched after its transfer encoding is undone, and so are the parts
// after it.
func TestHostileSearchUnknownCharset(t *testing.T) {
	ts := newTestServer(t, Options{InsecureAuth: true})
	ts.deliver(t, "INBOX", crlf(`Subject: latin
Content-Type: multipart/mixed; boundary=x

--x
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

h=E9llo wor=
ld
--x
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: base64

Z2lyYWZmZQ==
--x--
`))
	rc := hostileRaw(t, ts.addr)
	rc.login()
	rc.want("OK", "EXAMINE INBOX")
	assert.Equal(t, []string{"* SEARCH 1"}, rc.want("OK", "SEARCH BODY world"))
	assert.Equal(t, []string{"* SEARCH 1"}, rc.want("OK", "SEARCH BODY giraffe"))
	assert.Equal(t, []string{"* SEARCH 1"}, rc.want("OK", "SEARCH TEXT giraffe"))
	assert.Equal(t, []string{"* SEARCH"}, rc.want("OK", "SEARCH BODY zebra"))
}
