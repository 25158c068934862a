package main

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"strings"
)

// sysexits(3) codes, which programs calling sendmail inspect.
const (
	exOK          = 0
	exUsage       = 64
	exDataErr     = 65
	exNoUser      = 67
	exUnavailable = 69
	exSoftware    = 70
	exTempFail    = 75
	exConfig      = 78
)

// invocation is what the command line asked for.
type invocation struct {
	fromHeaders bool   // -t
	ignoreDots  bool   // -i / -oi
	from        string // -f / -r
	fullName    string // -F
	rcpts       []string
}

// parseArgs reads a sendmail command line. Options may be glued to their
// value ("-fuser@x") or separate ("-f user@x"), as sendmail accepts both.
func parseArgs(args []string) (invocation, error) {
	var inv invocation
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			inv.rcpts = append(inv.rcpts, args[i+1:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			inv.rcpts = append(inv.rcpts, a)
			continue
		}
		// value returns the option's argument, glued or next.
		value := func(opt string) (string, error) {
			if len(a) > len(opt) {
				return a[len(opt):], nil
			}
			if i+1 >= len(args) {
				return "", fmt.Errorf("option %s needs a value", opt)
			}
			i++
			return args[i], nil
		}
		switch {
		case a == "-t":
			inv.fromHeaders = true
		case a == "-i" || a == "-oi":
			inv.ignoreDots = true
		case strings.HasPrefix(a, "-f"), strings.HasPrefix(a, "-r"):
			v, err := value(a[:2])
			if err != nil {
				return inv, err
			}
			inv.from = strings.Trim(v, "<>")
		case strings.HasPrefix(a, "-F"):
			v, err := value("-F")
			if err != nil {
				return inv, err
			}
			inv.fullName = v
		case a == "-bm", a == "-v", a == "-U", a == "-odi", a == "-odb", a == "-odq",
			strings.HasPrefix(a, "-o"), strings.HasPrefix(a, "-B"), strings.HasPrefix(a, "-N"):
			// Accepted for compatibility; they tune local sendmail behaviour
			// that a submission client has no use for.
		case strings.HasPrefix(a, "-b"), strings.HasPrefix(a, "-q"):
			return inv, fmt.Errorf("mode %s is not supported (only message submission is)", a)
		default:
			return inv, fmt.Errorf("unknown option %s", a)
		}
	}
	return inv, nil
}

// config says where and how to submit.
type config struct {
	addr     string
	tls      string // "starttls", "tls", "none"
	insecure bool
	user     string
	password string
}

func configFromEnv(getenv func(string) string) (config, error) {
	c := config{
		addr:     getenv("MAILBLOCKS_SMTP"),
		tls:      strings.ToLower(getenv("MAILBLOCKS_TLS")),
		insecure: getenv("MAILBLOCKS_INSECURE") == "1",
		user:     getenv("MAILBLOCKS_USER"),
		password: getenv("MAILBLOCKS_PASSWORD"),
	}
	if c.addr == "" {
		c.addr = "127.0.0.1:5870"
	}
	switch c.tls {
	case "":
		c.tls = "starttls"
	case "starttls", "tls", "none":
	default:
		return c, errors.New(`MAILBLOCKS_TLS must be "starttls", "tls" or "none"`)
	}
	if (c.user == "") != (c.password == "") {
		return c, errors.New("MAILBLOCKS_USER and MAILBLOCKS_PASSWORD go together")
	}
	return c, nil
}

// defaultSender is $MAILBLOCKS_FROM, else login@hostname like sendmail.
func defaultSender(getenv func(string) string) string {
	if f := getenv("MAILBLOCKS_FROM"); f != "" {
		return f
	}
	if u := getenv("MAILBLOCKS_USER"); strings.Contains(u, "@") {
		return u
	}
	name := "nobody"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return name + "@" + host
}
