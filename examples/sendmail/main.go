// Command sendmail is a sendmail-compatible submission program: Unix
// programs and scripts that pipe a message into "sendmail -t" or
// "sendmail -f sender rcpt…" can use it to submit mail through a mailblocks
// server (or any SMTP submission server).
//
// Usage:
//
//	sendmail [-t] [-i] [-f sender] [-F fullname] [-o option…] [recipient…] < message
//
// Options understood (as in sendmail(8) and Postfix's sendmail(1)):
//
//	-t          take recipients from the To, Cc and Bcc headers (Bcc is removed)
//	-i, -oi     a line with a single "." does not end the message
//	-f, -r addr envelope sender (default: $MAILBLOCKS_FROM, else user@hostname)
//	-F name     full name for a From header added when the message has none
//	-o…, -B…, -v, -bm, -odi, -odb, -oem, -U and -N…  accepted and ignored
//
// Where to submit comes from the environment, so that the command line stays
// compatible:
//
//	MAILBLOCKS_SMTP      host:port of the submission server (default 127.0.0.1:5870)
//	MAILBLOCKS_TLS       starttls (default), tls (implicit TLS) or none
//	MAILBLOCKS_INSECURE  "1" to accept an unverified certificate (the example
//	                     server's self-signed one)
//	MAILBLOCKS_USER, MAILBLOCKS_PASSWORD  credentials for AUTH PLAIN
//
// Exit status follows sysexits(3): 0 on success, 64 usage, 65 bad message,
// 67 unknown recipient, 69 refused permanently, 75 temporary failure (try
// again later), 78 configuration.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	code := run(ctx, os.Args[1:], os.Stdin, os.Stderr, os.Getenv)
	os.Exit(code)
}

// run is main without the process: tests call it directly.
func run(ctx context.Context, args []string, stdin io.Reader, stderr io.Writer, getenv func(string) string) int {
	inv, err := parseArgs(args)
	if err != nil {
		fmt.Fprintf(stderr, "sendmail: %v\n", err)
		return exUsage
	}
	cfg, err := configFromEnv(getenv)
	if err != nil {
		fmt.Fprintf(stderr, "sendmail: %v\n", err)
		return exConfig
	}
	if inv.from == "" {
		inv.from = defaultSender(getenv)
	}
	msg, rcpts, err := prepare(stdin, inv)
	if err != nil {
		fmt.Fprintf(stderr, "sendmail: %v\n", err)
		return exDataErr
	}
	if len(rcpts) == 0 {
		fmt.Fprintln(stderr, "sendmail: no recipients given")
		return exUsage
	}
	if err := submit(ctx, cfg, inv.from, rcpts, msg); err != nil {
		fmt.Fprintf(stderr, "sendmail: %v\n", err)
		return exitCode(err)
	}
	return exOK
}
