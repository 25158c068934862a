package imapbackend

import (
	"context"
	"encoding/json"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const clientTimeout = 60 * time.Second

func hostPort(t *testing.T, addr string) (string, string) {
	h, p, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	return h, p
}

// TestPythonImaplib drives a session with Python's imaplib (STARTTLS).
func TestPythonImaplib(t *testing.T) {
	py := needClient(t, "python3")
	if _, err := exec.LookPath("/usr/bin/python3"); err == nil {
		py = "/usr/bin/python3"
	}
	ts := newTestServer(t, Options{})
	ts.deliver(t, "INBOX", msgPlain)
	ts.deliver(t, "INBOX", msgMultipart)

	host, port := hostPort(t, ts.addr)
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, filepath.Join("testdata", "imaplib_session.py"), host, port, ts.certPEM, testUser, testPass)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	var rep struct {
		List           []string `json:"list"`
		Exists         int      `json:"exists"`
		SearchUnseen   string   `json:"search_unseen"`
		SearchFrom     string   `json:"search_from"`
		SearchText     string   `json:"search_text"`
		UIDSearch      string   `json:"uid_search"`
		FetchHeader    string   `json:"fetch_header"`
		FetchLen       int      `json:"fetch_rfc822_len"`
		FlagsAfterRead string   `json:"flags_after_read"`
		Store          string   `json:"store"`
		Expunge        []string `json:"expunge"`
		Append         string   `json:"append"`
		Status         string   `json:"status"`
	}
	require.NoError(t, json.Unmarshal(out, &rep), "%s", out)
	assert.Contains(t, strings.Join(rep.List, "\n"), `(\HasNoChildren \Sent) "/" "Sent"`)
	assert.Equal(t, 2, rep.Exists)
	assert.Equal(t, "1 2", rep.SearchUnseen)
	assert.Equal(t, "1", rep.SearchFrom)
	assert.Equal(t, "1", rep.SearchText)
	assert.Equal(t, "1 2", rep.UIDSearch)
	assert.Equal(t, "Subject: Hello there\r\n\r\n", rep.FetchHeader)
	assert.Equal(t, len(msgPlain), rep.FetchLen)
	assert.Contains(t, rep.FlagsAfterRead, `\Seen`)
	assert.Contains(t, rep.Store, `\Flagged`)
	assert.Equal(t, []string{"1"}, rep.Expunge)
	assert.Contains(t, rep.Append, "APPEND completed")
	assert.Contains(t, rep.Status, "MESSAGES 3")
	assert.Contains(t, rep.Status, "UNSEEN 1")
}
