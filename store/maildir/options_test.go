package maildir_test

import (
	"github.com/mailblocks/mailblocks/store"
	"github.com/mailblocks/mailblocks/store/maildir"
)

// fastHash keeps the tests fast; production uses argon2id.
func fastHash(pw string) (string, error) {
	return store.HashPasswordParams(pw, store.Argon2Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 8, KeyLen: 16})
}

func testOptions() maildir.Options {
	return maildir.Options{DefaultDomain: "example.org", HashPassword: fastHash}
}
