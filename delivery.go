package mailblocks

// DeliveryStatus is the outcome of handing a message to the next hop for one
// recipient. It is what smtpclient reports and what the queue records,
// shows in its listing and puts in a DSN.
type DeliveryStatus struct {
	// Recipient is the forward-path concerned.
	Recipient string
	// Err is nil when the next hop accepted the recipient; otherwise an
	// *Error carrying the remote's code, enhanced code and text (or a local
	// classification such as a DNS failure). Temporary() decides between
	// retry and bounce.
	Err error
	// RemoteHost is the host that answered (MX name or smarthost), empty
	// when none was reached.
	RemoteHost string
	// RemoteDSN is set when the next hop accepted the recipient and
	// advertised DSN: the duty to send success notices passed on with it
	// (RFC 3461 5.2.2). When it is false and NOTIFY=SUCCESS was asked, the
	// queue sends a "relayed" notice itself.
	RemoteDSN bool
}
