// Command mailserver is a complete mail server for a small organisation,
// assembled from the mailblocks packages: SMTP in (MX, submission with
// STARTTLS, submissions with implicit TLS, optional LMTP), a durable queue
// and SMTP out (direct MX delivery or a smarthost), maildir storage with
// users, aliases, lists and catch-alls, and IMAP and POP3 (with STARTTLS
// and implicit TLS) to read the mail.
//
// Run it with no flags to get a working server on 127.0.0.1 for the domain
// example.test; it prints where it listens and a user to log in with:
//
//	go run ./examples/mailserver
//
// "mailserver -h" lists every flag with its default. SIGINT or SIGTERM shut
// it down gracefully: sessions and deliveries in progress are given time to
// finish, and mail already acknowledged is safe on disk in any case.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintf(os.Stderr, "mailserver: %v\n", err)
		os.Exit(1)
	}
}

// run starts the server and blocks until ctx is cancelled, then shuts it
// down. ready, when not nil, is called once everything listens.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runWith(ctx, args, stdout, stderr, nil)
}

func runWith(ctx context.Context, args []string, stdout, stderr io.Writer, ready func(*mailServer)) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	m, err := newMailServer(ctx, cfg, log)
	if err != nil {
		return err
	}
	if err := m.Start(ctx); err != nil {
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		m.Shutdown(shutdownCtx)
		return err
	}
	m.printBanner(stdout)
	log.Info("started", "hostname", cfg.Hostname, "data", cfg.DataDir)
	if ready != nil {
		ready(m)
	}
	<-ctx.Done()
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return m.Shutdown(shutdownCtx)
}

func newLogger(cfg *Config, w io.Writer) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
