package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/mailblocks/mailblocks/imapbackend"
	"github.com/mailblocks/mailblocks/pop3"
	"github.com/mailblocks/mailblocks/queue"
	"github.com/mailblocks/mailblocks/resolver"
	"github.com/mailblocks/mailblocks/smtpclient"
	"github.com/mailblocks/mailblocks/smtpserver"
	"github.com/mailblocks/mailblocks/store"
	"github.com/mailblocks/mailblocks/store/maildir"
)

// mailServer is the assembled MTA + MDA: every package of mailblocks wired
// around one maildir store and one queue.
type mailServer struct {
	cfg *Config
	log *slog.Logger

	store  *maildir.Store
	queue  *queue.Queue
	client *smtpclient.Client
	smtp   *smtpserver.Server
	imap   *imapserver.Server
	pop3   *pop3.Server
	tls    *tls.Config

	// defaultUser and defaultPassword are set when the server created its
	// first user itself.
	defaultUser, defaultPassword string

	mu        sync.Mutex
	listeners map[string]net.Listener // by service name
	wg        sync.WaitGroup
}

// services in the order they are listed at start.
var services = []string{"smtp", "submission", "submissions", "lmtp", "imap", "imaps", "pop3", "pop3s"}

func (c *Config) addr(service string) string {
	return map[string]string{
		"smtp": c.SMTPAddr, "submission": c.SubmissionAddr, "submissions": c.SubmissionsAddr,
		"lmtp": c.LMTPAddr, "imap": c.IMAPAddr, "imaps": c.IMAPSAddr,
		"pop3": c.POP3Addr, "pop3s": c.POP3SAddr,
	}[service]
}

// newMailServer opens the store and the queue in cfg.DataDir and builds the
// servers, without listening yet.
func newMailServer(ctx context.Context, cfg *Config, log *slog.Logger) (_ *mailServer, err error) {
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, err
	}
	spool := filepath.Join(cfg.DataDir, "spool")
	if err := os.MkdirAll(spool, 0o750); err != nil {
		return nil, err
	}
	// Files left in the spool by a crash belong to messages that were never
	// acknowledged (the client will send them again): remove them.
	if leftovers, err := filepath.Glob(filepath.Join(spool, spoolPattern)); err == nil {
		for _, f := range leftovers {
			os.Remove(f)
		}
	}
	cert, err := loadOrCreateCert(cfg.TLSCert, cfg.TLSKey, cfg.DataDir, cfg.Hostname)
	if err != nil {
		return nil, fmt.Errorf("TLS certificate: %w", err)
	}
	tlsConfig := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}

	st, err := maildir.Open(filepath.Join(cfg.DataDir, "store"), maildir.Options{
		DefaultDomain: cfg.DefaultDomain,
		Hostname:      cfg.Hostname,
		Logger:        log.With("component", "store"),
	})
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			st.Close()
		}
	}()
	m := &mailServer{cfg: cfg, log: log, store: st, tls: tlsConfig, listeners: map[string]net.Listener{}}
	if err := m.provision(ctx); err != nil {
		return nil, err
	}

	var res resolver.Resolver = resolver.New(resolver.Options{Servers: cfg.DNSServers, Logger: log.With("component", "resolver")})
	res = resolver.NewCache(res, resolver.CacheOptions{})
	clientOpts := smtpclient.Options{
		Hostname: cfg.Hostname,
		Resolver: res,
		Port:     cfg.OutboundPort,
		Logger:   log.With("component", "smtpclient"),
	}
	if cfg.Relay != "" {
		clientOpts.Smarthost = cfg.Relay
		clientOpts.SmarthostTLS = map[string]smtpclient.SmarthostTLS{
			"starttls": smtpclient.SmarthostSTARTTLS,
			"tls":      smtpclient.SmarthostImplicitTLS,
			"none":     smtpclient.SmarthostNoTLS,
		}[cfg.RelayTLS]
		if cfg.RelayUser != "" {
			clientOpts.Auth = &smtpclient.Auth{Username: cfg.RelayUser, Password: cfg.RelayPassword}
		}
	}
	m.client = smtpclient.New(clientOpts)

	rt := &router{dir: st, deliver: st, spoolDir: spool, log: log.With("component", "router")}
	m.queue, err = queue.Open(filepath.Join(cfg.DataDir, "queue"), m.client, queue.Options{
		Hostname:      cfg.Hostname,
		Postmaster:    "postmaster@" + cfg.DefaultDomain,
		Bounce:        queue.BounceFunc(rt.bounce),
		RetryInterval: cfg.RetryInterval,
		MaxQueueTime:  cfg.MaxQueueTime,
		Logger:        log.With("component", "queue"),
	})
	if err != nil {
		return nil, err
	}
	rt.enqueue = m.queue.Enqueue

	m.smtp = smtpserver.New(smtpserver.Options{
		Hostname:             cfg.Hostname,
		Handler:              rt,
		Directory:            st,
		Authenticator:        st,
		TLSConfig:            tlsConfig,
		AllowInsecureAuth:    cfg.InsecureAuth,
		TrustedNetworks:      cfg.TrustedNetworks,
		MaxMessageBytes:      cfg.MaxMessageBytes,
		MaxMessagesPerMinute: cfg.MaxMessagesPerMinute,
		Logger:               log.With("component", "smtp"),
	})
	m.imap = imapbackend.NewServer(st, imapbackend.Options{
		TLSConfig:    tlsConfig,
		InsecureAuth: cfg.InsecureAuth,
		Logger:       log.With("component", "imap"),
		AppendLimit:  uint32(min(cfg.MaxMessageBytes, 1<<31)),
	})
	m.pop3 = pop3.NewServer(st, pop3.Options{
		Hostname:          cfg.Hostname,
		TLSConfig:         tlsConfig,
		AllowInsecureAuth: cfg.InsecureAuth,
		Logger:            log.With("component", "pop3"),
	})
	return m, nil
}

// provision applies the command line to the directory: domains, users,
// aliases, lists and catch-alls. It is idempotent, so the same flags can be
// given at every start. When no user exists at all, it creates
// admin@<default domain> with a random password saved in the data
// directory, and makes postmaster@ an alias of it (RFC 5321 4.5.1).
func (m *mailServer) provision(ctx context.Context) error {
	st, cfg := m.store, m.cfg
	for _, d := range cfg.Domains {
		if err := st.AddDomain(ctx, d); err != nil {
			return fmt.Errorf("domain %s: %w", d, err)
		}
	}
	for _, u := range cfg.Users {
		quota := store.Quota{Bytes: u.Quota}
		err := st.AddUser(ctx, u.Address, u.Password, quota)
		if errors.Is(err, store.ErrUserExists) {
			err = st.SetPassword(ctx, u.Address, u.Password)
			if err == nil {
				err = st.SetQuota(ctx, u.Address, quota)
			}
		}
		if err != nil {
			return fmt.Errorf("user %s: %w", u.Address, err)
		}
	}
	users, err := st.Users(ctx)
	if err != nil {
		return err
	}
	if len(users) == 0 {
		if err := m.createDefaultUser(ctx); err != nil {
			return err
		}
	} else if pw, err := os.ReadFile(m.defaultPasswordFile()); err == nil {
		m.defaultUser = "admin@" + cfg.DefaultDomain
		m.defaultPassword = strings.TrimSpace(string(pw))
		if _, err := st.Authenticate(ctx, m.defaultUser, m.defaultPassword); err != nil {
			// The password was changed since: it is not ours to print.
			m.defaultUser, m.defaultPassword = "", ""
		}
	}
	for alias, target := range cfg.Aliases {
		if err := st.SetAlias(ctx, alias, target); err != nil {
			return fmt.Errorf("alias %s: %w", alias, err)
		}
	}
	for list, members := range cfg.Lists {
		if err := st.SetList(ctx, list, members); err != nil {
			return fmt.Errorf("list %s: %w", list, err)
		}
	}
	for domain, target := range cfg.CatchAll {
		if err := st.SetCatchAll(ctx, domain, target); err != nil {
			return fmt.Errorf("catch-all %s: %w", domain, err)
		}
	}
	return nil
}

func (m *mailServer) defaultPasswordFile() string {
	return filepath.Join(m.cfg.DataDir, "admin-password")
}

func (m *mailServer) createDefaultUser(ctx context.Context) error {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	pw := base64.RawURLEncoding.EncodeToString(b)
	user := "admin@" + m.cfg.DefaultDomain
	if err := writeFileAtomic(m.defaultPasswordFile(), []byte(pw+"\n"), 0o600); err != nil {
		return err
	}
	if err := m.store.AddUser(ctx, user, pw, store.Quota{}); err != nil {
		return fmt.Errorf("default user: %w", err)
	}
	if err := m.store.SetAlias(ctx, "postmaster@"+m.cfg.DefaultDomain, user); err != nil {
		return fmt.Errorf("postmaster alias: %w", err)
	}
	m.defaultUser, m.defaultPassword = user, pw
	return nil
}

// Start listens on every configured address and starts serving and the
// queue. On error, whatever was started is closed.
func (m *mailServer) Start(ctx context.Context) error {
	for _, svc := range services {
		addr := m.cfg.addr(svc)
		if addr == "" {
			continue
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			m.closeListeners()
			return fmt.Errorf("%s: listen %s: %w", svc, addr, err)
		}
		m.mu.Lock()
		m.listeners[svc] = l
		m.mu.Unlock()
	}
	// Deliveries take their context from Run's: with ctx itself, the signal
	// that starts a graceful shutdown would cancel the deliveries in
	// progress at once. Shutdown stops the queue and gives them its grace.
	m.queue.Start(context.WithoutCancel(ctx))
	for svc, l := range m.listeners {
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			err := m.serve(svc, l)
			if err != nil && !isClosed(err) {
				m.log.Error("server stopped", "service", svc, "err", err)
			}
		}()
	}
	return nil
}

func (m *mailServer) serve(svc string, l net.Listener) error {
	switch svc {
	case "smtp":
		return m.smtp.Serve(l, smtpserver.MX)
	case "submission":
		return m.smtp.Serve(l, smtpserver.Submission)
	case "submissions":
		return m.smtp.Serve(l, smtpserver.Submissions)
	case "lmtp":
		return m.smtp.Serve(l, smtpserver.LMTP)
	case "imap":
		return m.imap.Serve(l)
	case "imaps":
		return m.imap.Serve(tls.NewListener(l, m.tls))
	case "pop3":
		return m.pop3.Serve(l)
	case "pop3s":
		return m.pop3.ServeTLS(l)
	}
	return fmt.Errorf("unknown service %s", svc)
}

func isClosed(err error) bool {
	return errors.Is(err, smtpserver.ErrServerClosed) || errors.Is(err, pop3.ErrServerClosed) ||
		errors.Is(err, net.ErrClosed)
}

// Addr returns the address a service listens on, or "".
func (m *mailServer) Addr(svc string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if l := m.listeners[svc]; l != nil {
		return l.Addr().String()
	}
	return ""
}

func (m *mailServer) closeListeners() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, l := range m.listeners {
		l.Close()
	}
}

// Shutdown stops accepting connections, lets sessions and deliveries in
// progress finish until ctx is done, and closes the store. Mail that was
// acknowledged is on disk in the store or the queue, whatever happens.
//
// The protocol servers stop together, so that none keeps accepting
// sessions while another drains; the queue stops after SMTP, whose
// sessions still enqueue, and the store last, after the queue's bounces.
func (m *mailServer) Shutdown(ctx context.Context) error {
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	stop := func(name string, f func() error) {
		wg.Go(func() {
			if err := f(); err != nil && !isClosed(err) {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
				mu.Unlock()
			}
		})
	}
	stop("smtp", func() error { return m.smtp.Shutdown(ctx) })
	stop("pop3", func() error { return m.pop3.Shutdown(ctx) })
	stop("imap", m.imap.Close)
	wg.Wait()
	m.closeListeners()
	if err := m.queue.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("queue: %w", err))
	}
	m.client.Close()
	m.wg.Wait()
	if err := m.store.Close(); err != nil {
		errs = append(errs, fmt.Errorf("store: %w", err))
	}
	return errors.Join(errs...)
}

// printBanner tells the user what runs where and how to log in.
func (m *mailServer) printBanner(w io.Writer) {
	fmt.Fprintf(w, "mailblocks mailserver %s, data in %s\n", m.cfg.Hostname, m.cfg.DataDir)
	for _, svc := range services {
		if a := m.Addr(svc); a != "" {
			fmt.Fprintf(w, "  %-12s %s\n", svc, a)
		}
	}
	fmt.Fprintf(w, "  domains      %s\n", strings.Join(m.cfg.Domains, ", "))
	if m.defaultUser != "" {
		fmt.Fprintf(w, "log in as %s with password %s (saved in %s)\n", m.defaultUser, m.defaultPassword, m.defaultPasswordFile())
	}
}
