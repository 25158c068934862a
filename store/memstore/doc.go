// Package memstore is an in-memory implementation of store.Store and
// store.Admin, for tests and test doubles. Everything is lost when the
// process exits.
//
// It is safe for concurrent use and passes the conformance suite of
// store/storetest. Bodies are normalised to CRLF line endings on Deliver
// and Append (bare LF → CRLF, RFC 5322 2.3), so Size is the RFC 3501
// RFC822.SIZE. Quotas are enforced on Deliver, Append and Copy with
// store.ErrOverQuota (552 5.2.2). Each folder gets a fresh non-zero
// UIDVALIDITY when it is created, so a folder deleted and created again
// with the same name gets a new one (RFC 3501 2.3.1.1).
//
// The directory logic (lookups, plus-addressing, aliases, lists,
// catch-all, authentication) is store.DirectoryData; memstore only adds
// locking.
package memstore
