package store

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/mailblocks/mailblocks"
)

// DirectoryData is the directory of a store as a plain value: domains,
// users with their password hashes and quotas, aliases, distribution
// lists and catch-alls. It holds the shared logic of every implementation
// — validation, recipient lookup, authentication and the mutations behind
// Admin — without I/O or locking: an implementation keeps one behind its
// lock, wraps its methods, and persists it as it likes (every field is
// exported and serialisable).
//
// Keys are canonical (CanonicalAddress, NormalizeDomain). The zero value
// is an empty directory; the mutating methods create the maps as needed.
// It is not safe for concurrent use; Clone gives an independent copy.
type DirectoryData struct {
	// DefaultDomain completes usernames without "@" in Authenticate
	// (normalised by SetDefaultDomain). Empty means such usernames fail.
	DefaultDomain string `json:"default_domain,omitempty"`
	// PlusSeparator separates a local part from its plus-addressing tag
	// ("user+tag@"). Empty means "+".
	PlusSeparator string `json:"plus_separator,omitempty"`
	// Domains are the local domains, A-label lower case.
	Domains map[string]bool `json:"domains,omitempty"`
	// Users maps canonical addresses to users.
	Users map[string]UserRecord `json:"users,omitempty"`
	// Aliases maps a canonical address to one target address (a local
	// user, another alias or list, or a remote address).
	Aliases map[string]string `json:"aliases,omitempty"`
	// Lists maps a canonical address to its members (addresses, expanded
	// like alias targets).
	Lists map[string][]string `json:"lists,omitempty"`
	// CatchAll maps a local domain to the address that receives mail for
	// its unknown addresses.
	CatchAll map[string]string `json:"catch_all,omitempty"`
}

// UserRecord is one user of a DirectoryData.
type UserRecord struct {
	// Address is the canonical address, the same as the map key.
	Address string `json:"address"`
	// PasswordHash is an argon2id PHC string or a bcrypt hash
	// (CheckPassword); empty means no password login.
	PasswordHash string `json:"password_hash,omitempty"`
	Quota        Quota  `json:"quota,omitzero"`
}

// MaxExpansionDepth bounds the nesting of aliases and lists followed by
// Lookup (Postfix stops at the same kind of limit).
const MaxExpansionDepth = 20

// Clone returns a deep copy of d.
func (d *DirectoryData) Clone() *DirectoryData {
	c := *d
	c.Domains = maps.Clone(d.Domains)
	c.Users = maps.Clone(d.Users)
	c.Aliases = maps.Clone(d.Aliases)
	c.CatchAll = maps.Clone(d.CatchAll)
	if d.Lists != nil {
		c.Lists = make(map[string][]string, len(d.Lists))
		for k, v := range d.Lists {
			c.Lists[k] = slices.Clone(v)
		}
	}
	return &c
}

func (d *DirectoryData) sep() string {
	if d.PlusSeparator == "" {
		return "+"
	}
	return d.PlusSeparator
}

// IsLocalDomain reports whether domain (any case, U- or A-label) is local.
func (d *DirectoryData) IsLocalDomain(domain string) bool {
	nd, err := NormalizeDomain(domain)
	return err == nil && d.Domains[nd]
}

// SetDefaultDomain sets DefaultDomain after normalising it; "" clears
// it. It does not make the domain local.
func (d *DirectoryData) SetDefaultDomain(domain string) error {
	if domain == "" {
		d.DefaultDomain = ""
		return nil
	}
	nd, err := NormalizeDomain(domain)
	if err != nil {
		return err
	}
	d.DefaultDomain = nd
	return nil
}

// AddDomain makes domain local; adding it again is not an error.
func (d *DirectoryData) AddDomain(domain string) error {
	nd, err := NormalizeDomain(domain)
	if err != nil {
		return err
	}
	if d.Domains == nil {
		d.Domains = make(map[string]bool)
	}
	d.Domains[nd] = true
	return nil
}

// DomainList returns the local domains, sorted (Admin.Domains).
func (d *DirectoryData) DomainList() []string {
	return slices.Sorted(maps.Keys(d.Domains))
}

// UserList returns the canonical addresses of the users, sorted
// (Admin.Users).
func (d *DirectoryData) UserList() []string {
	return slices.Sorted(maps.Keys(d.Users))
}

// User returns the record of addr (any case); ok is false for an unknown
// or malformed address.
func (d *DirectoryData) User(addr string) (rec UserRecord, ok bool) {
	c, err := CanonicalAddress(addr)
	if err != nil {
		return UserRecord{}, false
	}
	rec, ok = d.Users[c]
	return rec, ok
}

// inUse says which kind of entry already holds the canonical address c.
func (d *DirectoryData) inUse(c string) string {
	switch {
	case d.Users[c].Address != "":
		return "a user"
	case d.Aliases[c] != "":
		return "an alias"
	case d.Lists[c] != nil:
		return "a list"
	}
	return ""
}

// canonicalLocal canonicalises addr and makes its domain local: defining
// an address in a domain makes the domain ours.
func (d *DirectoryData) canonicalLocal(addr string) (string, error) {
	c, err := CanonicalAddress(addr)
	if err != nil {
		return "", err
	}
	_ = d.AddDomain(mailblocks.DomainOf(c))
	return c, nil
}

// AddUser creates a user with password hashed by HashPassword (hash ==
// nil) or by hash, and returns its canonical address. The user's domain
// becomes local. ErrUserExists when the address is already a user, an
// alias or a list; ErrBadName for a malformed address. An empty password
// creates a user that cannot log in.
func (d *DirectoryData) AddUser(addr, password string, quota Quota, hash func(string) (string, error)) (string, error) {
	c, err := CanonicalAddress(addr)
	if err != nil {
		return "", err
	}
	if what := d.inUse(c); what != "" {
		return "", fmt.Errorf("store: add user %s: already %s: %w", c, what, ErrUserExists)
	}
	if err := validateQuota(quota); err != nil {
		return "", err
	}
	ph, err := hashOrEmpty(password, hash)
	if err != nil {
		return "", err
	}
	_, _ = d.canonicalLocal(c)
	if d.Users == nil {
		d.Users = make(map[string]UserRecord)
	}
	d.Users[c] = UserRecord{Address: c, PasswordHash: ph, Quota: quota}
	return c, nil
}

func hashOrEmpty(password string, hash func(string) (string, error)) (string, error) {
	if password == "" {
		return "", nil
	}
	if hash == nil {
		hash = HashPassword
	}
	return hash(password)
}

func validateQuota(q Quota) error {
	if q.Bytes < 0 || q.Messages < 0 {
		return fmt.Errorf("store: negative quota %+v: %w", q, ErrNotPermitted)
	}
	return nil
}

// SetPassword replaces a user's password hash (hash as in AddUser); an
// empty password disables password login.
// ErrNoSuchUser for an unknown user.
func (d *DirectoryData) SetPassword(addr, password string, hash func(string) (string, error)) error {
	rec, ok := d.User(addr)
	if !ok {
		return fmt.Errorf("store: set password %s: %w", truncate(addr), ErrNoSuchUser)
	}
	ph, err := hashOrEmpty(password, hash)
	if err != nil {
		return err
	}
	rec.PasswordHash = ph
	d.Users[rec.Address] = rec
	return nil
}

// SetQuota changes a user's quota. ErrNoSuchUser for an unknown user.
func (d *DirectoryData) SetQuota(addr string, quota Quota) error {
	if err := validateQuota(quota); err != nil {
		return err
	}
	rec, ok := d.User(addr)
	if !ok {
		return fmt.Errorf("store: set quota %s: %w", truncate(addr), ErrNoSuchUser)
	}
	rec.Quota = quota
	d.Users[rec.Address] = rec
	return nil
}

// DeleteUser removes a user and returns its canonical address (the
// implementation then removes its mail). Aliases and lists that name it
// are kept: Lookup skips local addresses that no longer exist.
func (d *DirectoryData) DeleteUser(addr string) (string, error) {
	rec, ok := d.User(addr)
	if !ok {
		return "", fmt.Errorf("store: delete user %s: %w", truncate(addr), ErrNoSuchUser)
	}
	delete(d.Users, rec.Address)
	return rec.Address, nil
}

// target validates an alias, list or catch-all target: the local part
// is kept as written (it may be remote, where case can matter) and the
// domain is normalised.
func target(addr string) (string, error) {
	l, dom, err := SplitCanonical(addr)
	if err != nil {
		return "", err
	}
	return l + "@" + dom, nil
}

// SetAlias makes alias deliver to target; an empty target removes it. The
// alias's domain becomes local. Setting an alias on a user or list
// address fails with ErrUserExists.
func (d *DirectoryData) SetAlias(alias, to string) error {
	c, err := CanonicalAddress(alias)
	if err != nil {
		return err
	}
	if to == "" {
		delete(d.Aliases, c)
		return nil
	}
	if what := d.inUse(c); what != "" && what != "an alias" {
		return fmt.Errorf("store: set alias %s: already %s: %w", c, what, ErrUserExists)
	}
	t, err := target(to)
	if err != nil {
		return err
	}
	_, _ = d.canonicalLocal(c)
	if d.Aliases == nil {
		d.Aliases = make(map[string]string)
	}
	d.Aliases[c] = t
	return nil
}

// SetList makes addr a distribution list of members (deduplicated); nil
// or empty members removes it. Its domain becomes local. ErrUserExists
// when addr is a user or an alias.
func (d *DirectoryData) SetList(addr string, members []string) error {
	c, err := CanonicalAddress(addr)
	if err != nil {
		return err
	}
	if len(members) == 0 {
		delete(d.Lists, c)
		return nil
	}
	if what := d.inUse(c); what != "" && what != "a list" {
		return fmt.Errorf("store: set list %s: already %s: %w", c, what, ErrUserExists)
	}
	var ms []string
	seen := make(map[string]bool)
	for _, m := range members {
		t, err := target(m)
		if err != nil {
			return err
		}
		if k := strings.ToLower(t); !seen[k] {
			seen[k] = true
			ms = append(ms, t)
		}
	}
	_, _ = d.canonicalLocal(c)
	if d.Lists == nil {
		d.Lists = make(map[string][]string)
	}
	d.Lists[c] = ms
	return nil
}

// SetCatchAll makes target receive the mail of unknown addresses of
// domain, which becomes local; an empty target removes the catch-all.
func (d *DirectoryData) SetCatchAll(domain, to string) error {
	nd, err := NormalizeDomain(domain)
	if err != nil {
		return err
	}
	if to == "" {
		delete(d.CatchAll, nd)
		return nil
	}
	t, err := target(to)
	if err != nil {
		return err
	}
	_ = d.AddDomain(nd)
	if d.CatchAll == nil {
		d.CatchAll = make(map[string]string)
	}
	d.CatchAll[nd] = t
	return nil
}

// Validate checks a DirectoryData that was not built through its methods
// (read from a file that someone may have edited): every key must be in
// canonical form, every target a valid address, quotas non-negative. An
// implementation that maps users to paths must call it after loading,
// since a key like "../x@example.org" would otherwise reach the file
// system. Errors wrap ErrBadName.
func (d *DirectoryData) Validate() error {
	bad := func(what, key string) error {
		return fmt.Errorf("store: directory: %s %q is not canonical: %w", what, truncate(key), ErrBadName)
	}
	if d.DefaultDomain != "" {
		if nd, err := NormalizeDomain(d.DefaultDomain); err != nil || nd != d.DefaultDomain {
			return bad("default domain", d.DefaultDomain)
		}
	}
	if strings.ContainsAny(d.PlusSeparator, "@\"\\/") {
		return bad("plus separator", d.PlusSeparator)
	}
	for dom := range d.Domains {
		if nd, err := NormalizeDomain(dom); err != nil || nd != dom {
			return bad("domain", dom)
		}
	}
	canonical := func(what, key string) error {
		if c, err := CanonicalAddress(key); err != nil || c != key {
			return bad(what, key)
		}
		return nil
	}
	validTarget := func(what, key, t string) error {
		if _, err := target(t); err != nil {
			return fmt.Errorf("store: directory: %s %q: target %q: %w", what, truncate(key), truncate(t), ErrBadName)
		}
		return nil
	}
	for k, rec := range d.Users {
		if err := canonical("user", k); err != nil {
			return err
		}
		if rec.Address != k {
			return bad("user address", rec.Address)
		}
		if validateQuota(rec.Quota) != nil {
			return fmt.Errorf("store: directory: user %q: negative quota: %w", truncate(k), ErrBadName)
		}
	}
	for k, t := range d.Aliases {
		if err := canonical("alias", k); err != nil {
			return err
		}
		if err := validTarget("alias", k, t); err != nil {
			return err
		}
	}
	for k, ms := range d.Lists {
		if err := canonical("list", k); err != nil {
			return err
		}
		for _, m := range ms {
			if err := validTarget("list", k, m); err != nil {
				return err
			}
		}
	}
	for dom, t := range d.CatchAll {
		if nd, err := NormalizeDomain(dom); err != nil || nd != dom {
			return bad("catch-all domain", dom)
		}
		if err := validTarget("catch-all", dom, t); err != nil {
			return err
		}
	}
	return nil
}
