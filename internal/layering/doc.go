// Package layering holds the test that enforces the import rules of the
// project's ARCHITECTURE.md on the real import graph (go list), so that a
// new package is covered without editing the test. It has no code of its
// own.
//
// The rules, by layer:
//
//   - layer 0: the root package imports only the standard library (its
//     tests also testify); internal/… packages (except the end-to-end
//     ones) import nothing of layers 1 to 3.
//   - layer 1: resolver and store (with their sub-packages) import only the
//     standard library, layer 0 and third-party modules, not each other.
//   - layer 2: smtpserver, smtpclient, queue, pop3, imapbackend, antispam,
//     filter (with their sub-packages) import layers 0 and 1, never each
//     other, not even in tests.
//   - layer 3: examples/…, mailtest (the test double) and internal/e2e…
//     import anything; nothing else imports them.
//   - store's implementations (store/<impl>, anything under store/ except
//     store/storetest) are imported only by layer 3, by themselves and by
//     _test files.
//
// A package under a top-level directory that the rules do not know fails
// the test until it is classified here.
package layering
