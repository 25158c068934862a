// Package queue is the durable outbound mail queue of mailblocks: it stores
// messages for remote recipients, hands them to a [Deliverer] (smtpclient in
// a full server), retries temporary failures with exponential backoff,
// expires recipients that fail for too long, and sends delivery status
// notifications (RFC 3464, RFC 3461).
//
// # Durability
//
// [Open] keeps the queue in a directory. [Queue.Enqueue] returns only once
// the message and its envelope are on disk and fsynced (written to a
// temporary file, fsynced, renamed, directory fsynced); concurrent
// enqueues share the directory fsync (group commit). Per-recipient progress
// is rewritten atomically as deliveries happen, so that a restart does not
// resend to recipients already delivered. After a crash at any moment,
// every message whose Enqueue returned is delivered at least once, and
// nothing half-written is sent. [NewMemory] behaves the same without a disk.
//
// # Scheduling
//
// The recipients of a message are grouped by destination domain; each group
// is one Deliver call, scheduled independently, so one domain's failure
// does not delay another's. Deliveries run within a total and a per-domain
// concurrency limit; a delivery goroutine delivers several messages for one
// domain in a row so the Deliverer can reuse a connection. A temporary
// failure is retried after Options.RetryInterval, doubling up to
// Options.MaxRetryInterval, until Options.MaxQueueTime (defaults 5 min,
// 1 h, 5 days, close to Postfix). The classification is mailblocks.IsTemporary:
// an error without an SMTP code is temporary. When no server of a domain
// could be reached at all (every recipient deferred without a RemoteHost),
// the domain is left alone for RetryInterval: its other messages wait
// rather than each time out in turn (Postfix's "dead destination").
//
// # Notifications
//
// On permanent failure or expiry the envelope sender receives a DSN
// (multipart/report; report-type=delivery-status, RFC 3464 / RFC 6522) with
// the original headers, or the whole message with RET=FULL (RFC 3461 4.3);
// for a message sent with SMTPUTF8 the report is
// message/global-delivery-status and the returned message message/global
// or message/global-headers (RFC 6533), as they may hold UTF-8.
// NOTIFY (RFC 3461 4.1) is honoured: NEVER suppresses notices, DELAY asks
// for one delay notice after Options.DelayWarning, SUCCESS for a "relayed"
// notice when the next hop did not take over DSN duties. Notices are never
// sent to the null reverse-path (RFC 5321 4.5.5); a failed notice goes to
// Options.Postmaster or is logged and dropped. Notices go to
// Options.Bounce, by default back into the queue. A message gets one notice
// of each kind for all the recipients concerned once no delivery of it is
// in flight (not one per destination domain); a notice owed is recorded in
// the spool, so a crash before it is handed over does not lose it.
//
// Notices are acknowledged mail too: when Options.Bounce fails to take one
// with a temporary error, the notice stays owed (the message stays in the
// queue, on disk, even with no recipient left) and is retried with the
// deliveries' backoff, across restarts; Entry.NoticeRetry shows when. A
// notice still failing Options.MaxQueueTime after its first failure is
// logged at error level and dropped: there is nobody left to tell. A
// permanent refusal (a *mailblocks.Error with a 5xx code, say the local
// sender no longer exists) is logged and dropped at once.
//
// # Administration
//
// List, Get, Retry, Flush, Delete, DeleteAll, Hold and Release mirror
// Postfix's postqueue and postsuper; Options.OnEvent reports each
// recipient's progress for statistics.
package queue
