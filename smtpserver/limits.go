package smtpserver

import (
	"net/netip"
	"sync"
	"time"
)

// limiter keeps the per-client-address counters: open connections,
// transactions in the last minute, and failed AUTH attempts. Entries are
// dropped when they hold nothing, so memory follows the active clients.
type limiter struct {
	mu         sync.Mutex
	clients    map[netip.Addr]*clientState
	last       time.Time     // last sweep
	authWindow time.Duration // how long a failed AUTH counts (AuthLockout)
}

type clientState struct {
	conns    int
	messages []time.Time // accepted MAIL commands, oldest first
	authFail []time.Time // failed AUTH attempts, oldest first
}

func newLimiter(authWindow time.Duration) *limiter {
	return &limiter{clients: make(map[netip.Addr]*clientState), authWindow: authWindow}
}

// clientKey is the unit of the per-client limits: the address itself for
// IPv4, its /84 prefix for IPv6, where one client commonly owns a whole
// /64 and could otherwise rotate addresses (Postfix 3.8's
// smtpd_client_ipv6_prefix_length defaults to 84 too).
func clientKey(ip netip.Addr) netip.Addr {
	if ip.Is6() {
		p, err := ip.Prefix(84)
		if err == nil {
			return p.Addr()
		}
	}
	return ip
}

func (l *limiter) get(ip netip.Addr) *clientState {
	cs := l.clients[ip]
	if cs == nil {
		cs = &clientState{}
		l.clients[ip] = cs
	}
	return cs
}

// prune drops the timestamps older than window.
func prune(ts []time.Time, now time.Time, window time.Duration) []time.Time {
	i := 0
	for i < len(ts) && now.Sub(ts[i]) >= window {
		i++
	}
	if i == len(ts) {
		return nil
	}
	return ts[i:]
}

// sweep drops idle entries, at most once a minute.
func (l *limiter) sweep(now time.Time) {
	if now.Sub(l.last) < time.Minute {
		return
	}
	l.last = now
	for ip, cs := range l.clients {
		cs.messages = prune(cs.messages, now, time.Minute)
		cs.authFail = prune(cs.authFail, now, l.authWindow)
		if cs.conns == 0 && cs.messages == nil && cs.authFail == nil {
			delete(l.clients, ip)
		}
	}
}

// connect counts a new connection from ip and reports whether it is within
// max (0: no limit).
func (l *limiter) connect(ip netip.Addr, max int) bool {
	ip = clientKey(ip)
	l.mu.Lock()
	defer l.mu.Unlock()
	cs := l.get(ip)
	if max > 0 && cs.conns >= max {
		l.dropIfEmpty(ip, cs)
		return false
	}
	cs.conns++
	return true
}

// disconnect undoes connect.
func (l *limiter) disconnect(ip netip.Addr) {
	ip = clientKey(ip)
	l.mu.Lock()
	defer l.mu.Unlock()
	cs := l.get(ip)
	cs.conns--
	l.dropIfEmpty(ip, cs)
}

func (l *limiter) dropIfEmpty(ip netip.Addr, cs *clientState) {
	if cs.conns <= 0 && cs.messages == nil && cs.authFail == nil {
		delete(l.clients, ip)
	}
}

// message counts a transaction from ip at now and reports whether it is
// within max per minute (0: no limit).
func (l *limiter) message(ip netip.Addr, now time.Time, max int) bool {
	ip = clientKey(ip)
	if max <= 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	cs := l.get(ip)
	cs.messages = prune(cs.messages, now, time.Minute)
	if len(cs.messages) >= max {
		return false
	}
	cs.messages = append(cs.messages, now)
	return true
}

// authLocked reports whether ip has max failures within the auth window.
func (l *limiter) authLocked(ip netip.Addr, now time.Time, max int) bool {
	ip = clientKey(ip)
	if max <= 0 {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	cs := l.clients[ip]
	if cs == nil {
		return false
	}
	cs.authFail = prune(cs.authFail, now, l.authWindow)
	l.dropIfEmpty(ip, cs)
	return len(cs.authFail) >= max
}

// authFailed records a failure.
func (l *limiter) authFailed(ip netip.Addr, now time.Time, max int) {
	ip = clientKey(ip)
	if max <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	cs := l.get(ip)
	cs.authFail = prune(cs.authFail, now, l.authWindow)
	if len(cs.authFail) < max { // bounded memory per address
		cs.authFail = append(cs.authFail, now)
	}
}
