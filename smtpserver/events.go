package smtpserver

import (
	"net"
	"time"

	"github.com/mailblocks/mailblocks"
)

// EventKind is the kind of an Event.
type EventKind int

const (
	// EventConnect: a client connected and was greeted.
	EventConnect EventKind = iota
	// EventDisconnect: a session ended.
	EventDisconnect
	// EventReject: a command, a connection or a message was refused; Code,
	// Enhanced and Stage say which.
	EventReject
	// EventAccept: a message was accepted (the handler made it durable).
	EventAccept
	// EventAuth: a client authenticated.
	EventAuth
	// EventAuthFailure: an AUTH attempt failed.
	EventAuthFailure
)

// String returns the kind's name, as used in logs.
func (k EventKind) String() string {
	switch k {
	case EventConnect:
		return "connect"
	case EventDisconnect:
		return "disconnect"
	case EventReject:
		return "reject"
	case EventAccept:
		return "accept"
	case EventAuth:
		return "auth"
	case EventAuthFailure:
		return "auth-failure"
	}
	return "invalid"
}

// Event is something that happened in a session, for statistics and
// journals (see Options.OnEvent).
type Event struct {
	Kind       EventKind
	Time       time.Time
	Session    string
	Mode       Mode
	RemoteAddr net.Addr
	// Stage is the command concerned: "connect", "helo", "auth", "mail",
	// "rcpt" or "data".
	Stage string
	// Code and Enhanced are the reply of an EventReject.
	Code     int
	Enhanced mailblocks.EnhancedCode
	// Checker is the name of the Checker that rejected, if one did.
	Checker string
	// Envelope is the transaction, for EventAccept and for rejections at
	// MAIL, RCPT and data. It must not be modified.
	Envelope *mailblocks.Envelope
	// User is the authenticated identity (EventAuth) or the user name tried
	// (EventAuthFailure).
	User string
}
