package queue

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

// FuzzReadMessage feeds arbitrary message and state files to the spool
// reader used at Open: it must reject what it cannot read, never panic,
// and never return a record that does not match its file.
func FuzzReadMessage(f *testing.F) {
	valid := "Subject: x\r\n\r\nbody\r\n" +
		`{"id":"0123456789abcdef0123456789","created":"2026-11-23T10:00:00Z","size":0,"env":{"from":"a@example.org","received":"2026-11-23T10:00:00Z"},"rcpt":[{"addr":"b@example.com","state":"pending"}]}` +
		"\n000000000194 mbq1\n"
	f.Add([]byte(valid), []byte(""))
	f.Add([]byte(valid), []byte(`{"id":"0123456789abcdef0123456789","rcpt":[{"addr":"b@example.com","state":"delivered"}]}`))
	f.Add([]byte("garbage"), []byte(""))
	f.Add([]byte("\n999999999999 mbq1\n"), []byte(""))
	f.Fuzz(func(t *testing.T, msg, state []byte) {
		dir := t.TempDir()
		s := &fileSpool{msgDir: dir, log: slog.New(slog.DiscardHandler)}
		const id = "0123456789abcdef0123456789"
		if err := os.WriteFile(filepath.Join(dir, id), msg, 0o600); err != nil {
			t.Fatal(err)
		}
		if len(state) > 0 {
			if err := os.WriteFile(filepath.Join(dir, id+stateSuffix), state, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		rec, err := s.readMessage(id, len(state) > 0)
		if err != nil {
			return
		}
		if rec.ID != id || rec.Size < 0 || rec.Size > int64(len(msg)) || len(rec.Rcpt) == 0 {
			t.Fatalf("accepted inconsistent record %+v", rec)
		}
	})
}
