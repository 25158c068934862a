package queue

import (
	"bufio"
	"io"
	"strings"
	"testing"

	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks"
)

const utf8Body = "From: Jörg <jörg@exämple.org>\r\nTo: Zoë <zoë@exämple.com>\r\nSubject: Grüße\r\nMessage-Id: <2@exämple.org>\r\n\r\nHallo Zoë.\r\n"

// TestBounceSMTPUTF8: the notice of an SMTPUTF8 message uses the RFC 6533
// types, which allow UTF-8 in the report and the returned header.
func TestBounceSMTPUTF8(t *testing.T) {
	tests := []struct {
		name     string
		ret      mailblocks.DSNReturn
		wantType string
	}{
		{"headers", "", "message/global-headers"},
		{"full", mailblocks.ReturnFull, "message/global"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := make(notices, 10)
			d := newScripted().script("zoë@exämple.com", mailblocks.NewError(550, mailblocks.EnhancedCode{5, 1, 1}, "Unbekannter Empfänger"))
			q := startQueue(t, "file", d, Options{Bounce: n.handler(), Hostname: "mta.example.org"})
			e := env("jörg@exämple.org", "zoë@exämple.com")
			e.SMTPUTF8 = true
			e.Body = mailblocks.Body8BitMIME
			e.Return = tt.ret
			e.Recipients[0].OriginalRecipient = `utf-8;zo\x{EB}@ex\x{E4}mple.com`
			_, err := q.Enqueue(t.Context(), e, strings.NewReader(utf8Body))
			require.NoError(t, err)
			b := n.next(t)
			assert.True(t, b.env.SMTPUTF8, "the notice needs SMTPUTF8 itself")
			assert.Equal(t, []string{"jörg@exämple.org"}, []string{b.env.Recipients[0].Address})

			ent, err := gomessage.Read(strings.NewReader(b.body))
			require.NoError(t, err)
			mt, params, err := ent.Header.ContentType()
			require.NoError(t, err)
			assert.Equal(t, "multipart/report", mt)
			assert.Equal(t, "global-delivery-status", params["report-type"], "RFC 6522 3: the type of the second part")
			mr := ent.MultipartReader()
			require.NotNil(t, mr)
			var types []string
			var parts []string
			for {
				p, err := mr.NextPart()
				if err == io.EOF {
					break
				}
				require.NoError(t, err)
				pt, _, err := p.Header.ContentType()
				require.NoError(t, err)
				body, err := io.ReadAll(p.Body)
				require.NoError(t, err)
				types = append(types, pt)
				parts = append(parts, string(body))
			}
			require.Equal(t, []string{"text/plain", "message/global-delivery-status", tt.wantType}, types)
			assert.Contains(t, parts[0], "<zoë@exämple.com>: failed: smtp; 550 5.1.1 Unbekannter Empfänger")

			blocks := strings.Split(strings.TrimRight(parts[1], "\r\n"), "\r\n\r\n")
			require.Len(t, blocks, 2)
			rh, err := textproto.ReadHeader(bufio.NewReader(strings.NewReader(blocks[1] + "\r\n\r\n")))
			require.NoError(t, err)
			assert.Equal(t, "utf-8; zoë@exämple.com", rh.Get("Final-Recipient"))
			assert.Equal(t, "utf-8;zoë@exämple.com", rh.Get("Original-Recipient"))
			assert.Equal(t, "smtp; 550 5.1.1 Unbekannter Empfänger", rh.Get("Diagnostic-Code"))
			assert.Equal(t, "5.1.1", rh.Get("Status"))

			if tt.ret == mailblocks.ReturnFull {
				assert.Equal(t, utf8Body, parts[2])
			} else {
				h, err := textproto.ReadHeader(bufio.NewReader(strings.NewReader(parts[2])))
				require.NoError(t, err)
				assert.Equal(t, "Grüße", h.Get("Subject"))
				assert.NotContains(t, parts[2], "Hallo")
			}
		})
	}
}

// TestBounceASCIIUnchanged: without SMTPUTF8 the RFC 3464 types stay.
func TestBounceASCIIUnchanged(t *testing.T) {
	n := make(notices, 10)
	q := startQueue(t, "memory", newScripted().script("bob@example.com", err550), Options{Bounce: n.handler()})
	e := env("alice@example.org", "bob@example.com")
	e.Return = mailblocks.ReturnFull
	enqueue(t, q, e)
	r := parseDSN(t, n.next(t).body)
	assert.Equal(t, []string{"text/plain", "message/delivery-status", "message/rfc822"}, r.partTypes)
	assert.Equal(t, "rfc822; bob@example.com", r.rcpts[0].Get("Final-Recipient"))
}

func TestUnitext(t *testing.T) {
	for in, want := range map[string]string{
		`zo\x{EB}@ex\x{E4}mple.com`: "zoë@exämple.com",
		`a\x{2B}b@example.com`:      "a+b@example.com",
		`\x{1F600}@example.com`:     "😀@example.com",
		`plain@example.com`:         "plain@example.com",
		`bad\x{ZZ}@example.com`:     `bad\x{ZZ}@example.com`,
		`surrogate\x{D800}@x`:       `surrogate\x{D800}@x`,
		`open\x{41`:                 `open\x{41`,
		`one\x{4}@x`:                `one\x{4}@x`,
	} {
		assert.Equal(t, want, unitext(in), in)
	}
}
