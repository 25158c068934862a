package smtpclient_test

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailblocks/mailblocks/resolver/dnstest"
	"github.com/mailblocks/mailblocks/smtpclient"
)

// relay is a go-smtp server that requires AUTH and records what it got.
type relay struct {
	mu    sync.Mutex
	auths []string // "mech user"
	msgs  []relayMsg
	addr  string
}

type relayMsg struct {
	from  string
	rcpts []string
	data  []byte
	user  string
	tls   bool
}

type relaySession struct {
	r    *relay
	conn *smtp.Conn
	user string
	cur  relayMsg
}

func (s *relaySession) AuthMechanisms() []string { return []string{sasl.Plain, sasl.Login} }

func (s *relaySession) Auth(mech string) (sasl.Server, error) {
	check := func(user, pass string) error {
		if user != "relayuser" || pass != "s3cret" {
			return smtp.ErrAuthFailed
		}
		s.user = user
		s.r.mu.Lock()
		s.r.auths = append(s.r.auths, mech+" "+user)
		s.r.mu.Unlock()
		return nil
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(identity, user, pass string) error { return check(user, pass) }), nil
	case sasl.Login:
		return &loginServer{check: check}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

func (s *relaySession) Mail(from string, _ *smtp.MailOptions) error {
	if s.user == "" {
		return smtp.ErrAuthRequired
	}
	_, isTLS := s.conn.TLSConnectionState()
	s.cur = relayMsg{from: from, user: s.user, tls: isTLS}
	return nil
}

func (s *relaySession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.cur.rcpts = append(s.cur.rcpts, to)
	return nil
}

func (s *relaySession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.cur.data = b
	s.r.mu.Lock()
	s.r.msgs = append(s.r.msgs, s.cur)
	s.r.mu.Unlock()
	return nil
}

func (s *relaySession) Reset()        { s.cur = relayMsg{} }
func (s *relaySession) Logout() error { return nil }

// loginServer is the server side of the LOGIN mechanism
// (draft-murchison-sasl-login), which go-sasl only has as a client.
type loginServer struct {
	check      func(user, pass string) error
	step       int
	user, pass string
}

func (l *loginServer) Next(resp []byte) ([]byte, bool, error) {
	switch l.step {
	case 0:
		l.step++
		if resp != nil {
			l.user = string(resp)
			l.step++
			return []byte("Password:"), false, nil
		}
		return []byte("Username:"), false, nil
	case 1:
		l.user = string(resp)
		l.step++
		return []byte("Password:"), false, nil
	default:
		l.pass = string(resp)
		return nil, true, l.check(l.user, l.pass)
	}
}

// startRelay starts a go-smtp server with the certificate; implicit selects
// TLS from the first byte.
func startRelay(t *testing.T, cert tls.Certificate, implicit bool) *relay {
	t.Helper()
	r := &relay{}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &relaySession{r: r, conn: c}, nil
	}))
	srv.Domain = "relay.test"
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.ReadTimeout = 30 * time.Second
	srv.WriteTimeout = 30 * time.Second
	var ln net.Listener
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	r.addr = ln.Addr().String()
	if implicit {
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, smtp.ErrServerClosed) {
			t.Logf("relay: %v", err)
		}
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return r
}

func (r *relay) messages() []relayMsg {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]relayMsg(nil), r.msgs...)
}

func TestSmarthost(t *testing.T) {
	cert, roots := testCert(t, "127.0.0.1")
	tests := []struct {
		name string
		mode smtpclient.SmarthostTLS
		mech string
	}{
		{"STARTTLS PLAIN", smtpclient.SmarthostSTARTTLS, ""},
		{"STARTTLS LOGIN", smtpclient.SmarthostSTARTTLS, "LOGIN"},
		{"implicit TLS PLAIN", smtpclient.SmarthostImplicitTLS, "PLAIN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := startRelay(t, cert, tt.mode == smtpclient.SmarthostImplicitTLS)
			c := newClient(t, smtpclient.Options{
				Smarthost:    r.addr,
				SmarthostTLS: tt.mode,
				Auth:         &smtpclient.Auth{Username: "relayuser", Password: "s3cret", Mechanism: tt.mech},
				TLSConfig:    &tls.Config{RootCAs: roots},
			})
			// Recipients of several domains all go through the relay,
			// in one transaction.
			env := envelope("a@sender.test", "b@one.test", "c@two.test")
			for range 2 {
				st := deliver(t, c, env, testBody)
				for _, s := range st {
					require.NoError(t, s.Err)
					assert.Equal(t, "127.0.0.1", s.RemoteHost)
				}
			}
			msgs := r.messages()
			require.Len(t, msgs, 2)
			assert.Equal(t, []string{"b@one.test", "c@two.test"}, msgs[0].rcpts)
			assert.Equal(t, "relayuser", msgs[0].user)
			assert.True(t, msgs[0].tls)
			assert.Equal(t, testBody, string(msgs[0].data))
			mech := tt.mech
			if mech == "" {
				mech = "PLAIN"
			}
			r.mu.Lock()
			assert.Equal(t, []string{mech + " relayuser"}, r.auths, "one AUTH: the second message reused the session")
			r.mu.Unlock()
		})
	}
}

func TestSmarthostFailures(t *testing.T) {
	cert, roots := testCert(t, "127.0.0.1")
	r := startRelay(t, cert, false)

	t.Run("bad password is temporary", func(t *testing.T) {
		c := newClient(t, smtpclient.Options{Smarthost: r.addr, TLSConfig: &tls.Config{RootCAs: roots},
			Auth: &smtpclient.Auth{Username: "relayuser", Password: "wrong"}})
		st := deliver(t, c, envelope("a@sender.test", "b@one.test"), testBody)
		ce, me := reply(t, st[0].Err)
		assert.Equal(t, "AUTH", ce.Command)
		assert.True(t, me.Temporary())
		assert.Equal(t, 435, me.Code)
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		c := newClient(t, smtpclient.Options{Smarthost: r.addr,
			Auth: &smtpclient.Auth{Username: "relayuser", Password: "s3cret"}})
		st := deliver(t, c, envelope("a@sender.test", "b@one.test"), testBody)
		_, me := reply(t, st[0].Err)
		assert.True(t, me.Temporary())
		assert.Equal(t, "4.7.5", me.Enhanced.String())
	})
	t.Run("no credentials in clear text", func(t *testing.T) {
		c := newClient(t, smtpclient.Options{Smarthost: r.addr, SmarthostTLS: smtpclient.SmarthostNoTLS,
			Auth: &smtpclient.Auth{Username: "relayuser", Password: "s3cret"}})
		st := deliver(t, c, envelope("a@sender.test", "b@one.test"), testBody)
		ce, me := reply(t, st[0].Err)
		assert.Equal(t, "AUTH", ce.Command)
		assert.True(t, me.Temporary())
	})
	t.Run("smarthost name that does not resolve is temporary", func(t *testing.T) {
		// A configuration problem of ours: the mail waits for it to be
		// fixed rather than bouncing.
		dns := dnstest.NewServer(t, "other.test. A 127.0.0.1")
		c := newClient(t, smtpclient.Options{Smarthost: "relay.nowhere.test:25", Resolver: newResolver(t, dns)})
		st := deliver(t, c, envelope("a@sender.test", "b@one.test"), testBody)
		ce, me := reply(t, st[0].Err)
		assert.Equal(t, smtpclient.CmdDNS, ce.Command)
		assert.True(t, me.Temporary(), me.Error())
	})
	assert.Empty(t, r.messages())
}
