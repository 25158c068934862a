package store

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"
)

// cheapHash keeps tests fast under -race; the format is the same.
func cheapHash(pw string) (string, error) {
	return HashPasswordParams(pw, Argon2Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32})
}

func TestHashPasswordFormat(t *testing.T) {
	h, err := HashPassword("secret")
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$"), h)
	assert.NotContains(t, h, "secret")
	assert.True(t, CheckPassword(h, "secret"))
	assert.False(t, CheckPassword(h, "Secret"))

	h2, err := HashPassword("secret")
	require.NoError(t, err)
	assert.NotEqual(t, h, h2, "salt must be random")
}

func TestHashPasswordParamsRejected(t *testing.T) {
	for _, p := range []Argon2Params{
		{},
		{Memory: 64, Time: 0, Threads: 1, SaltLen: 16, KeyLen: 32},
		{Memory: 64, Time: 1, Threads: 0, SaltLen: 16, KeyLen: 32},
		{Memory: 64, Time: 1, Threads: 1, SaltLen: 4, KeyLen: 32},
		{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 8},
		{Memory: 2 << 20, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32},
	} {
		_, err := HashPasswordParams("x", p)
		assert.ErrorIs(t, err, ErrBadHash, "%+v", p)
	}
}

func TestCheckPassword(t *testing.T) {
	argon, err := cheapHash("pässword")
	require.NoError(t, err)
	bc, err := bcrypt.GenerateFromPassword([]byte("pässword"), bcrypt.MinCost)
	require.NoError(t, err)
	b := string(bc)
	require.True(t, strings.HasPrefix(b, "$2a$"))
	// bcrypt/PHP variants differ in the prefix only.
	b2b := "$2b$" + b[4:]
	b2y := "$2y$" + b[4:]
	parts := strings.Split(argon, "$")

	tests := []struct {
		name, hash, pw string
		want           bool
	}{
		{"argon2id ok", argon, "pässword", true},
		{"argon2id wrong", argon, "password", false},
		{"argon2id empty pw", argon, "", false},
		{"bcrypt 2a", b, "pässword", true},
		{"bcrypt 2a wrong", b, "x", false},
		{"bcrypt 2b", b2b, "pässword", true},
		{"bcrypt 2y", b2y, "pässword", true},
		{"plaintext never", "pässword", "pässword", false},
		{"empty hash", "", "", false},
		{"argon2i refused", strings.Replace(argon, "argon2id", "argon2i", 1), "pässword", false},
		{"no version", "$argon2id$" + strings.Join(parts[3:], "$"), "pässword", false},
		{"bad version", strings.Replace(argon, "v=19", "v=16", 1), "pässword", false},
		{"changed params", strings.Replace(argon, "t=1", "t=2", 1), "pässword", false},
		{"huge memory", strings.Replace(argon, "m=64", "m=99999999", 1), "pässword", false},
		{"huge time", strings.Replace(argon, "t=1", "t=100000", 1), "pässword", false},
		{"zero threads", strings.Replace(argon, "p=1", "p=0", 1), "pässword", false},
		{"extra param", strings.Replace(argon, "p=1", "p=1,x=2", 1), "pässword", false},
		{"missing param", strings.Replace(argon, ",p=1", "", 1), "pässword", false},
		{"bad salt", strings.Replace(argon, parts[4], "!!!", 1), "pässword", false},
		{"short key", strings.Replace(argon, parts[5], "AAAA", 1), "pässword", false},
		{"truncated", argon[:len(argon)-10], "pässword", false},
		{"md5crypt", "$1$abc$def", "x", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, CheckPassword(tt.hash, tt.pw))
		})
	}
}

func TestDummyHashIsDefaultCost(t *testing.T) {
	var nilDummy *DummyHash
	for _, d := range []*DummyHash{nilDummy, NewDummyHash(nil)} {
		h := d.Hash()
		assert.True(t, strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$"), h)
		assert.Equal(t, h, d.Hash())
		assert.False(t, CheckPassword(h, ""))
	}
}

// TestDummyHashFollowsHasher checks that the dummy hash of an unknown user
// has the cost of the configured hash function, whatever it is, so that
// unknown and known users cost the same.
func TestDummyHashFollowsHasher(t *testing.T) {
	bcryptHash := func(pw string) (string, error) {
		h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		return string(h), err
	}
	failing := func(string) (string, error) { return "", ErrBadHash }
	tests := []struct {
		name   string
		hash   func(string) (string, error)
		prefix string
	}{
		{"argon2 cheap", cheapHash, "$argon2id$v=19$m=64,t=1,p=1$"},
		{"bcrypt", bcryptHash, "$2a$04$"},
		{"failing falls back to the default", failing, "$argon2id$v=19$m=19456,t=2,p=1$"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			dummy := NewDummyHash(func(pw string) (string, error) {
				calls++
				return tt.hash(pw)
			})
			assert.Zero(t, calls, "computed lazily")
			d := &DirectoryData{}
			require.NoError(t, d.SetDefaultDomain("example.org"))
			_, err := d.AddUser("alice@example.org", "pw", Quota{}, tt.hash)
			if err == nil {
				user, hash := d.Credentials("alice", dummy)
				assert.Equal(t, "alice@example.org", user)
				assert.True(t, strings.HasPrefix(hash, tt.prefix), hash)
			}
			for _, name := range []string{"nobody", "nobody@example.org", "x@elsewhere.test"} {
				user, hash := d.Credentials(name, dummy)
				assert.Empty(t, user)
				assert.True(t, strings.HasPrefix(hash, tt.prefix), hash)
				_, err := VerifyCredentials(user, hash, "pw")
				assert.ErrorIs(t, err, ErrAuthFailed)
			}
			assert.Equal(t, 1, calls, "computed once")
		})
	}
}
