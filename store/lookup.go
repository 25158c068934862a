package store

import (
	"fmt"
	"strings"

	"github.com/mailblocks/mailblocks"
)

// Lookup implements the semantics of Directory.LookupRecipient, in the
// order Postfix's virtual tables use:
//
//  1. a domain that is not local gives LookupNotOurDomain;
//  2. the address itself, as a user, an alias or a list (local parts and
//     domains are matched case-insensitively);
//  3. with plus-addressing, the address without its tag ("bob+news@" →
//     "bob@");
//  4. the domain's catch-all;
//  5. otherwise LookupUnknown.
//
// Aliases, lists and catch-alls are expanded recursively: local targets
// are resolved in turn (a local target that resolves to nothing is
// dropped), targets in other domains go to Lookup.Remote. Each address is
// expanded at most once, which removes duplicates and breaks loops, and
// nesting stops at MaxExpansionDepth. The result is LookupLocal when it
// reaches at least one user or remote address, else LookupUnknown.
//
// When the address carried a tag and resolved to exactly one user,
// Lookup.Folder is the tag (INBOX spelled canonically) if hasFolder(user,
// tag) reports that the folder exists; hasFolder may be nil (no folder).
// An implementation passes a function that looks at the user's mailbox.
//
// A malformed address gives an error that matches both ErrBadName and
// mailblocks.ErrBadDestinationSyntax (501 5.1.3).
func (d *DirectoryData) Lookup(addr string, hasFolder func(user, folder string) bool) (Lookup, error) {
	local, dom, err := SplitCanonical(addr)
	if err != nil {
		return Lookup{}, fmt.Errorf("%w: %w", err, mailblocks.ErrBadDestinationSyntax)
	}
	if !d.Domains[dom] {
		return Lookup{Kind: LookupNotOurDomain}, nil
	}
	x := expander{d: d, seen: make(map[string]bool)}
	var tag string
	found := x.local(strings.ToLower(local)+"@"+dom, 0)
	if !found {
		if base, t, ok := d.cutTag(local); ok {
			tag = t
			found = x.local(strings.ToLower(base)+"@"+dom, 0)
		}
	}
	if !found {
		x.catchAll(dom, 0)
	}
	res := Lookup{Kind: LookupUnknown, Users: x.users, Remote: x.remote}
	if len(res.Users)+len(res.Remote) > 0 {
		res.Kind = LookupLocal
	}
	if tag != "" && len(res.Users) == 1 && hasFolder != nil {
		f := CanonicalFolderName(tag)
		if ValidateFolderName(f) == nil && hasFolder(res.Users[0], f) {
			res.Folder = f
		}
	}
	return res, nil
}

// cutTag splits "bob+tag" into "bob" and "tag". A local part that starts
// with the separator has no tag.
func (d *DirectoryData) cutTag(local string) (base, tag string, ok bool) {
	i := strings.Index(local, d.sep())
	if i <= 0 {
		return "", "", false
	}
	return local[:i], local[i+len(d.sep()):], true
}

// expander accumulates the result of one Lookup.
type expander struct {
	d      *DirectoryData
	seen   map[string]bool
	users  []string
	remote []string
}

// local expands the canonical address c if the directory knows it as a
// user, alias or list, and reports whether it does.
func (x *expander) local(c string, depth int) bool {
	d := x.d
	_, isUser := d.Users[c]
	alias, isAlias := d.Aliases[c]
	members, isList := d.Lists[c]
	if !isUser && !isAlias && !isList {
		return false
	}
	if x.seen[c] || depth > MaxExpansionDepth {
		return true
	}
	x.seen[c] = true
	switch {
	case isUser:
		x.users = append(x.users, c)
	case isAlias:
		x.target(alias, depth+1)
	case isList:
		for _, m := range members {
			x.target(m, depth+1)
		}
	}
	return true
}

// target expands an alias, list or catch-all target.
func (x *expander) target(t string, depth int) {
	local, dom, err := SplitCanonical(t)
	if err != nil {
		return // validated when set; a hand-edited file may still hold junk
	}
	if !x.d.Domains[dom] {
		r := local + "@" + dom
		if !x.seen[r] {
			x.seen[r] = true
			x.remote = append(x.remote, r)
		}
		return
	}
	if x.local(strings.ToLower(local)+"@"+dom, depth) {
		return
	}
	if base, _, ok := x.d.cutTag(local); ok && x.local(strings.ToLower(base)+"@"+dom, depth) {
		return
	}
	x.catchAll(dom, depth)
}

func (x *expander) catchAll(dom string, depth int) {
	t := x.d.CatchAll[dom]
	k := "@" + dom
	if t == "" || x.seen[k] || depth > MaxExpansionDepth {
		return
	}
	x.seen[k] = true
	x.target(t, depth+1)
}

// Credentials returns the canonical user and password hash that
// Authenticate checks for username (a username without "@" is taken in
// DefaultDomain). For an unknown user, or one without a password, user is
// "" and hash is dummy.Hash(), so that checking it takes as long as
// checking a real one: dummy must come from the hash function the store
// hashes passwords with (see DummyHash; nil stands for HashPassword).
// Implementations may call it under their lock and VerifyCredentials
// outside it.
func (d *DirectoryData) Credentials(username string, dummy *DummyHash) (user, hash string) {
	if !strings.Contains(username, "@") {
		if d.DefaultDomain == "" {
			return "", dummy.Hash()
		}
		username += "@" + d.DefaultDomain
	}
	rec, ok := d.User(username)
	if !ok || rec.PasswordHash == "" {
		return "", dummy.Hash()
	}
	return rec.Address, rec.PasswordHash
}

// VerifyCredentials checks password against hash as returned by
// Credentials and returns user, or ErrAuthFailed.
func VerifyCredentials(user, hash, password string) (string, error) {
	// Check the hash even when user is "", so that both cases cost the
	// same.
	ok := CheckPassword(hash, password)
	if !ok || user == "" {
		return "", ErrAuthFailed
	}
	return user, nil
}

// Authenticate implements Authenticator.Authenticate on d: the canonical
// user, or ErrAuthFailed for an unknown user or a wrong password alike.
// dummy is as in Credentials.
func (d *DirectoryData) Authenticate(username, password string, dummy *DummyHash) (string, error) {
	user, hash := d.Credentials(username, dummy)
	return VerifyCredentials(user, hash, password)
}
