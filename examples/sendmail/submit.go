package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/mailblocks/mailblocks"
)

// submitError remembers which step failed so that the exit status can say
// whether the recipient was unknown, the message refused or the failure
// temporary.
type submitError struct {
	step string
	rcpt string
	err  error
}

func (e *submitError) Error() string {
	if e.rcpt != "" {
		return fmt.Sprintf("%s <%s>: %v", e.step, e.rcpt, e.err)
	}
	return fmt.Sprintf("%s: %v", e.step, e.err)
}

func (e *submitError) Unwrap() error { return e.err }

// exitCode maps a failure to sysexits(3).
func exitCode(err error) int {
	var se *submitError
	var smtpErr *smtp.SMTPError
	if !errors.As(err, &smtpErr) {
		// Connection refused, timeouts, TLS trouble: try again later.
		return exTempFail
	}
	if smtpErr.Code >= 400 && smtpErr.Code < 500 {
		return exTempFail
	}
	if errors.As(err, &se) && se.step == "RCPT" && smtpErr.EnhancedCode[1] == 1 {
		return exNoUser
	}
	if smtpErr.Code >= 500 {
		return exUnavailable
	}
	return exSoftware
}

// submit sends one message over SMTP submission.
func submit(ctx context.Context, cfg config, from string, rcpts []string, msg io.Reader) error {
	host, _, err := net.SplitHostPort(cfg.addr)
	if err != nil {
		return &submitError{step: "connect", err: err}
	}
	tlsConfig := &tls.Config{ServerName: host, InsecureSkipVerify: cfg.insecure}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", cfg.addr)
	if err != nil {
		return &submitError{step: "connect", err: err}
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	var c *smtp.Client
	switch cfg.tls {
	case "tls":
		c = smtp.NewClient(tls.Client(conn, tlsConfig))
	case "starttls":
		c, err = smtp.NewClientStartTLS(conn, tlsConfig)
		if err != nil {
			conn.Close()
			return &submitError{step: "STARTTLS", err: err}
		}
	default:
		c = smtp.NewClient(conn)
	}
	defer c.Close()

	name, err := os.Hostname()
	if err != nil || name == "" {
		name = "localhost"
	}
	if err := c.Hello(name); err != nil {
		return &submitError{step: "EHLO", err: err}
	}
	if cfg.user != "" {
		if err := c.Auth(sasl.NewPlainClient("", cfg.user, cfg.password)); err != nil {
			return &submitError{step: "AUTH", err: err}
		}
	}
	var mailOpts smtp.MailOptions
	if needsUTF8(from, rcpts) {
		mailOpts.UTF8 = true
	}
	if err := c.Mail(from, &mailOpts); err != nil {
		return &submitError{step: "MAIL FROM", err: err}
	}
	for _, r := range rcpts {
		if err := c.Rcpt(r, nil); err != nil {
			return &submitError{step: "RCPT", rcpt: r, err: err}
		}
	}
	w, err := c.Data()
	if err != nil {
		return &submitError{step: "DATA", err: err}
	}
	if _, err := io.Copy(w, msg); err != nil {
		w.Close()
		return &submitError{step: "DATA", err: err}
	}
	if err := w.Close(); err != nil {
		return &submitError{step: "end of DATA", err: err}
	}
	// The 250 above made the message the server's: a failed QUIT loses
	// nothing, and reporting it would make the caller send a duplicate.
	_ = c.Quit()
	return nil
}

func needsUTF8(from string, rcpts []string) bool {
	for _, a := range append([]string{from}, rcpts...) {
		if !mailblocks.IsASCII(a) {
			return true
		}
	}
	return false
}
