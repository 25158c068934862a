package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"strings"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
)

// prepare reads the message header from stdin, applies the command line
// (-t recipients, Bcc removal, From added when missing) and returns the
// message as a stream: the rewritten header followed by the rest of stdin,
// which is not read into memory.
func prepare(stdin io.Reader, inv invocation) (io.Reader, []string, error) {
	in := stdin
	if !inv.ignoreDots {
		in = &dotStop{r: bufio.NewReader(stdin)}
	}
	br := bufio.NewReader(in)
	hdr, err := textproto.ReadHeader(br)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the message header: %w", err)
	}
	h := mail.Header{Header: message.Header{Header: hdr}}

	rcpts := append([]string(nil), inv.rcpts...)
	if inv.fromHeaders {
		for _, field := range []string{"To", "Cc", "Bcc"} {
			addrs, err := h.AddressList(field)
			if err != nil {
				return nil, nil, fmt.Errorf("bad %s header: %w", field, err)
			}
			for _, a := range addrs {
				rcpts = append(rcpts, a.Address)
			}
		}
		// Blind copies stay blind (sendmail -t removes the Bcc header).
		h.Del("Bcc")
	}
	if !h.Has("From") {
		from := &mail.Address{Name: inv.fullName, Address: inv.from}
		h.Set("From", from.String())
	}
	var head bytes.Buffer
	if err := textproto.WriteHeader(&head, h.Header.Header); err != nil {
		return nil, nil, err
	}
	return io.MultiReader(&head, br), dedup(rcpts), nil
}

func dedup(addrs []string) []string {
	seen := make(map[string]bool, len(addrs))
	out := addrs[:0]
	for _, a := range addrs {
		k := strings.ToLower(a)
		if a == "" || seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, a)
	}
	return out
}

// dotStop ends the input at a line holding a single "." (sendmail's
// behaviour without -i): what follows that line is not part of the message.
type dotStop struct {
	r    *bufio.Reader
	buf  []byte
	done bool
}

func (d *dotStop) Read(p []byte) (int, error) {
	for len(d.buf) == 0 {
		if d.done {
			return 0, io.EOF
		}
		line, err := d.r.ReadBytes('\n')
		if string(bytes.TrimRight(line, "\r\n")) == "." && len(line) > 1 {
			d.done = true
			return 0, io.EOF
		}
		d.buf = line
		if err != nil {
			if !errors.Is(err, io.EOF) {
				return 0, err
			}
			d.done = true
		}
	}
	n := copy(p, d.buf)
	d.buf = d.buf[n:]
	return n, nil
}
