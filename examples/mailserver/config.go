package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config is everything the command line can set. Its zero value is not
// usable; defaultConfig gives the embedded defaults.
type Config struct {
	Hostname string
	DataDir  string

	// Listen addresses; empty disables a listener.
	SMTPAddr        string
	SubmissionAddr  string
	SubmissionsAddr string
	LMTPAddr        string
	IMAPAddr        string
	IMAPSAddr       string
	POP3Addr        string
	POP3SAddr       string

	TLSCert, TLSKey string

	Domains       []string
	DefaultDomain string
	Users         []UserSpec
	UsersFile     string
	Aliases       map[string]string
	Lists         map[string][]string
	CatchAll      map[string]string

	Relay         string // smarthost host:port
	RelayUser     string
	RelayPassword string
	RelayTLS      string // starttls, tls, none
	OutboundPort  int    // port used for MX delivery

	TrustedNetworks      []netip.Prefix
	MaxMessageBytes      int64
	MaxMessagesPerMinute int
	RetryInterval        time.Duration
	MaxQueueTime         time.Duration
	DNSServers           []string
	InsecureAuth         bool

	LogFormat string
	LogLevel  string
}

// UserSpec is one -user flag or users-file line.
type UserSpec struct {
	Address  string
	Password string
	Quota    int64 // bytes, 0 = none
}

func defaultConfig() *Config {
	return &Config{
		Hostname:        "mail.example.test",
		DataDir:         "./mailserver-data",
		SMTPAddr:        "127.0.0.1:2525",
		SubmissionAddr:  "127.0.0.1:5870",
		SubmissionsAddr: "127.0.0.1:4650",
		IMAPAddr:        "127.0.0.1:1430",
		IMAPSAddr:       "127.0.0.1:9930",
		POP3Addr:        "127.0.0.1:1100",
		POP3SAddr:       "127.0.0.1:9950",
		Aliases:         map[string]string{},
		Lists:           map[string][]string{},
		CatchAll:        map[string]string{},
		RelayTLS:        "starttls",
		OutboundPort:    25,
		TrustedNetworks: []netip.Prefix{
			netip.MustParsePrefix("127.0.0.0/8"),
			netip.MustParsePrefix("::1/128"),
		},
		MaxMessageBytes:      25 << 20,
		MaxMessagesPerMinute: 120,
		RetryInterval:        5 * time.Minute,
		MaxQueueTime:         5 * 24 * time.Hour,
		LogFormat:            "text",
		LogLevel:             "info",
	}
}

// listFlag is a repeatable string flag.
type listFlag struct{ add func(string) error }

func (l listFlag) String() string     { return "" }
func (l listFlag) Set(v string) error { return l.add(v) }

// parseFlags reads the command line into a Config.
func parseFlags(args []string, output io.Writer) (*Config, error) {
	c := defaultConfig()
	fs := flag.NewFlagSet("mailserver", flag.ContinueOnError)
	fs.SetOutput(output)
	fs.Usage = func() {
		fmt.Fprintf(output, "Usage: mailserver [flags]\n\n"+
			"A complete mail server (SMTP in and out, queue, maildir, IMAP, POP3) for a small\n"+
			"organisation. With no flags it runs on 127.0.0.1 with domain example.test and prints\n"+
			"the address and password of a user you can log in with.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&c.Hostname, "hostname", c.Hostname, "the server's host name: SMTP greeting, EHLO, Received headers, bounces")
	fs.StringVar(&c.DataDir, "data", c.DataDir, "data directory: maildirs, directory files, queue, TLS certificate")
	fs.StringVar(&c.SMTPAddr, "smtp", c.SMTPAddr, "SMTP (MX) listen address, mail from other servers; empty disables")
	fs.StringVar(&c.SubmissionAddr, "submission", c.SubmissionAddr, "submission listen address (STARTTLS, AUTH required); empty disables")
	fs.StringVar(&c.SubmissionsAddr, "submissions", c.SubmissionsAddr, "submissions listen address (implicit TLS, AUTH required); empty disables")
	fs.StringVar(&c.LMTPAddr, "lmtp", c.LMTPAddr, "LMTP listen address for local delivery from another MTA; empty disables")
	fs.StringVar(&c.IMAPAddr, "imap", c.IMAPAddr, "IMAP listen address (STARTTLS); empty disables")
	fs.StringVar(&c.IMAPSAddr, "imaps", c.IMAPSAddr, "IMAPS listen address (implicit TLS); empty disables")
	fs.StringVar(&c.POP3Addr, "pop3", c.POP3Addr, "POP3 listen address (STLS); empty disables")
	fs.StringVar(&c.POP3SAddr, "pop3s", c.POP3SAddr, "POP3S listen address (implicit TLS); empty disables")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "TLS certificate file (PEM); default: a self-signed certificate generated in the data directory")
	fs.StringVar(&c.TLSKey, "tls-key", "", "TLS private key file (PEM), with -tls-cert")
	fs.Var(listFlag{func(v string) error {
		for _, d := range strings.Split(v, ",") {
			if d = strings.TrimSpace(d); d != "" {
				c.Domains = append(c.Domains, strings.ToLower(d))
			}
		}
		return nil
	}}, "domain", "a local mail domain (repeatable or comma-separated); default example.test")
	fs.StringVar(&c.DefaultDomain, "default-domain", "", "domain for logins without @domain; default: the first -domain")
	fs.Var(listFlag{func(v string) error {
		u, err := parseUserSpec(v)
		if err == nil {
			c.Users = append(c.Users, u)
		}
		return err
	}}, "user", "a user as address:password[:quota-bytes] (repeatable); created if missing, password updated otherwise")
	fs.StringVar(&c.UsersFile, "users-file", "", "a file of users, one address:password[:quota-bytes] per line, # comments")
	fs.Var(listFlag{func(v string) error {
		a, t, ok := strings.Cut(v, "=")
		if !ok || a == "" || t == "" {
			return errors.New("want alias=target")
		}
		c.Aliases[a] = t
		return nil
	}}, "alias", "an alias as alias@domain=target@domain (repeatable)")
	fs.Var(listFlag{func(v string) error {
		a, m, ok := strings.Cut(v, "=")
		if !ok || a == "" || m == "" {
			return errors.New("want list@domain=member1,member2")
		}
		c.Lists[a] = strings.Split(m, ",")
		return nil
	}}, "list", "a distribution list as list@domain=member1,member2 (repeatable)")
	fs.Var(listFlag{func(v string) error {
		d, t, ok := strings.Cut(v, "=")
		if !ok || d == "" || t == "" {
			return errors.New("want domain=target@domain")
		}
		c.CatchAll[strings.ToLower(d)] = t
		return nil
	}}, "catchall", "a catch-all as domain=target@domain: mail for unknown addresses goes to target (repeatable)")
	fs.StringVar(&c.Relay, "relay", "", "smarthost host:port: all outbound mail goes through it instead of direct MX delivery")
	fs.StringVar(&c.RelayUser, "relay-user", "", "smarthost AUTH user")
	fs.StringVar(&c.RelayPassword, "relay-password", "", "smarthost AUTH password")
	fs.StringVar(&c.RelayTLS, "relay-tls", c.RelayTLS, "smarthost TLS: starttls, tls (implicit) or none")
	fs.IntVar(&c.OutboundPort, "outbound-port", c.OutboundPort, "TCP port of remote MX hosts for outbound delivery")
	fs.Var(listFlag{func(v string) error {
		c.TrustedNetworks = c.TrustedNetworks[:0]
		for _, s := range strings.Split(v, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			p, err := netip.ParsePrefix(s)
			if err != nil {
				a, err2 := netip.ParseAddr(s)
				if err2 != nil {
					return err
				}
				p = netip.PrefixFrom(a, a.BitLen())
			}
			c.TrustedNetworks = append(c.TrustedNetworks, p)
		}
		return nil
	}}, "trusted-networks", "comma-separated CIDRs allowed to relay without AUTH (like Postfix mynetworks); default 127.0.0.0/8,::1/128")
	fs.Int64Var(&c.MaxMessageBytes, "max-message-size", c.MaxMessageBytes, "maximum message size in bytes (SIZE)")
	fs.IntVar(&c.MaxMessagesPerMinute, "max-messages-per-minute", c.MaxMessagesPerMinute, "maximum messages accepted per client IP per minute (0 = no limit)")
	fs.DurationVar(&c.RetryInterval, "retry-interval", c.RetryInterval, "first retry delay of deferred outbound mail (backs off from there)")
	fs.DurationVar(&c.MaxQueueTime, "max-queue-time", c.MaxQueueTime, "how long outbound mail is retried before it bounces")
	fs.Var(listFlag{func(v string) error {
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				c.DNSServers = append(c.DNSServers, s)
			}
		}
		return nil
	}}, "dns", "DNS server(s) host:port for MX lookups; default: the system's /etc/resolv.conf")
	fs.BoolVar(&c.InsecureAuth, "insecure-auth", false, "allow passwords over connections without TLS (testing only)")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "log format: text or json")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "log level: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if len(c.Domains) == 0 {
		c.Domains = []string{"example.test"}
	}
	if c.DefaultDomain == "" {
		c.DefaultDomain = c.Domains[0]
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return nil, errors.New("-tls-cert and -tls-key go together")
	}
	switch c.RelayTLS {
	case "starttls", "tls", "none":
	default:
		return nil, fmt.Errorf("-relay-tls: %q is not starttls, tls or none", c.RelayTLS)
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return nil, fmt.Errorf("-log-format: %q is not text or json", c.LogFormat)
	}
	if c.UsersFile != "" {
		users, err := readUsersFile(c.UsersFile)
		if err != nil {
			return nil, err
		}
		c.Users = append(users, c.Users...)
	}
	return c, nil
}

func parseUserSpec(v string) (UserSpec, error) {
	parts := strings.SplitN(v, ":", 3)
	if len(parts) < 2 || parts[0] == "" || parts[1] == "" {
		return UserSpec{}, errors.New("want address:password[:quota-bytes]")
	}
	u := UserSpec{Address: parts[0], Password: parts[1]}
	if len(parts) == 3 && parts[2] != "" {
		q, err := strconv.ParseInt(parts[2], 10, 64)
		if err != nil || q < 0 {
			return UserSpec{}, fmt.Errorf("quota %q is not a number of bytes", parts[2])
		}
		u.Quota = q
	}
	return u, nil
}

func readUsersFile(path string) ([]UserSpec, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var users []UserSpec
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		u, err := parseUserSpec(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		users = append(users, u)
	}
	return users, sc.Err()
}
