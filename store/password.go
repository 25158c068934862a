package store

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Argon2Params are the cost parameters of an argon2id hash (RFC 9106).
// They are written into every hash, so changing them later only affects
// new hashes.
type Argon2Params struct {
	// Memory in KiB.
	Memory uint32
	// Time is the number of passes.
	Time uint32
	// Threads is the degree of parallelism.
	Threads uint8
	// SaltLen and KeyLen are in bytes.
	SaltLen uint32
	KeyLen  uint32
}

// DefaultArgon2Params follow the OWASP recommendation for argon2id
// (19 MiB, 2 passes, 1 thread): about 20-40 ms per hash on a current
// core, cheap enough for tests, expensive enough for an offline attacker.
func DefaultArgon2Params() Argon2Params {
	return Argon2Params{Memory: 19 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}
}

// Limits on parameters read from a stored hash, so that a corrupted or
// hostile password file cannot make CheckPassword allocate gigabytes or
// spin for minutes.
const (
	maxArgon2Memory  = 1 << 20 // 1 GiB in KiB
	maxArgon2Time    = 64
	maxArgon2KeyLen  = 1024
	maxArgon2SaltLen = 1024
)

// ErrBadHash is returned by HashPassword for unusable parameters.
var ErrBadHash = errors.New("store: unusable password hash")

// HashPassword hashes pw with argon2id and DefaultArgon2Params. The result
// is a PHC string: $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash> (salt and
// hash in unpadded standard base64), as written by the reference
// implementation, libsodium and Dovecot's ARGON2ID scheme.
func HashPassword(pw string) (string, error) {
	return HashPasswordParams(pw, DefaultArgon2Params())
}

// HashPasswordParams is HashPassword with explicit parameters.
func HashPasswordParams(pw string, p Argon2Params) (string, error) {
	if p.Memory < 8*uint32(max(p.Threads, 1)) || p.Memory > maxArgon2Memory ||
		p.Time < 1 || p.Time > maxArgon2Time || p.Threads < 1 ||
		p.SaltLen < 8 || p.SaltLen > maxArgon2SaltLen || p.KeyLen < 16 || p.KeyLen > maxArgon2KeyLen {
		return "", fmt.Errorf("store: hash password: %w: argon2 parameters %+v", ErrBadHash, p)
	}
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("store: hash password: %w", err)
	}
	key := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// CheckPassword reports whether pw matches hash, an argon2id PHC string or
// a bcrypt hash ($2a$, $2b$, $2y$). The comparison is constant-time. An
// empty, malformed or unsupported hash never matches (plaintext is never
// accepted).
func CheckPassword(hash, pw string) bool {
	switch {
	case strings.HasPrefix(hash, "$argon2id$"):
		return checkArgon2id(hash, pw)
	case strings.HasPrefix(hash, "$2a$"), strings.HasPrefix(hash, "$2b$"), strings.HasPrefix(hash, "$2y$"):
		// bcrypt compares in constant time (subtle.ConstantTimeCompare).
		return bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw)) == nil
	}
	return false
}

// checkArgon2id verifies a PHC string "$argon2id$v=19$m=M,t=T,p=P$salt$key".
// The version field is required: x/crypto implements version 0x13 only,
// and a hash without it would be version 0x10.
func checkArgon2id(hash, pw string) bool {
	parts := strings.Split(hash, "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, key
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return false
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return false
	}
	var m, t, p uint64
	seen := 0
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return false
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return false
		}
		switch k {
		case "m":
			m = n
		case "t":
			t = n
		case "p":
			p = n
		default:
			return false
		}
		seen++
	}
	if seen != 3 || t < 1 || t > maxArgon2Time || p < 1 || p > 255 || m < 8*p || m > maxArgon2Memory {
		return false
	}
	b64 := base64.RawStdEncoding
	salt, err := b64.DecodeString(parts[4])
	if err != nil || len(salt) < 8 || len(salt) > maxArgon2SaltLen {
		return false
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil || len(want) < 16 || len(want) > maxArgon2KeyLen {
		return false
	}
	got := argon2.IDKey([]byte(pw), salt, uint32(t), uint32(m), uint8(p), uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// DummyHash is the hash that Credentials gives for an unknown user (or
// one without a password), so that Authenticate checks a hash either way
// and an unknown user costs as much time as a wrong password: otherwise
// the time of a failed login would tell an attacker which users exist (a
// user-enumeration timing oracle). The cost parameters are part of a
// hash, so the dummy must come from the same hash function as the real
// ones: an implementation makes one DummyHash per configured hash
// function (NewDummyHash) and passes it to Credentials. It is safe for
// concurrent use.
type DummyHash struct {
	hash func(password string) (string, error)
	once sync.Once
	h    string
}

// NewDummyHash returns a DummyHash made by hash (nil: HashPassword). The
// hash is computed on first use, once: a store that never sees an unknown
// user never pays for it.
func NewDummyHash(hash func(password string) (string, error)) *DummyHash {
	return &DummyHash{hash: hash}
}

// Hash returns the dummy hash, a hash of a random password. A nil
// DummyHash, or one whose function fails, gives a hash made by
// HashPassword.
func (d *DummyHash) Hash() string {
	if d == nil || d.hash == nil {
		return defaultDummyHash()
	}
	d.once.Do(func() {
		d.h, _ = d.hash(randomPassword())
	})
	if d.h == "" {
		return defaultDummyHash()
	}
	return d.h
}

func randomPassword() string {
	var pw [16]byte
	_, _ = rand.Read(pw[:])
	return base64.RawStdEncoding.EncodeToString(pw[:])
}

// defaultDummyHash is the DummyHash of HashPassword, shared by every store
// that uses the default (it holds no secret: the password is random and
// forgotten).
var defaultDummyHash = sync.OnceValue(func() string {
	h, err := HashPassword(randomPassword())
	if err != nil {
		// Unreachable with DefaultArgon2Params; CheckPassword of "" is
		// false anyway.
		return ""
	}
	return h
})
