package store

import "context"

// Admin manages the directory: domains, users, aliases, lists, catch-alls.
// Changes are persistent (for stores that persist) and take effect at once.
type Admin interface {
	// AddDomain makes domain local. Adding an existing domain is not an
	// error.
	AddDomain(ctx context.Context, domain string) error
	// Domains lists the local domains in A-label form, sorted.
	Domains(ctx context.Context) ([]string, error)
	// AddUser creates a mailbox with its default folders. The password is
	// hashed before it is stored. ErrUserExists if it exists.
	AddUser(ctx context.Context, addr, password string, quota Quota) error
	// SetPassword changes a user's password.
	SetPassword(ctx context.Context, addr, password string) error
	// SetQuota changes a user's quota.
	SetQuota(ctx context.Context, addr string, quota Quota) error
	// DeleteUser removes a user and its mail.
	DeleteUser(ctx context.Context, addr string) error
	// Users lists the canonical addresses of every user, sorted.
	Users(ctx context.Context) ([]string, error)
	// SetAlias makes alias deliver to target (a local user, or a remote
	// address). An empty target removes the alias.
	SetAlias(ctx context.Context, alias, target string) error
	// SetList makes addr a distribution list of members; nil members
	// removes it.
	SetList(ctx context.Context, addr string, members []string) error
	// SetCatchAll sends mail for unknown addresses of domain to target; an
	// empty target removes it.
	SetCatchAll(ctx context.Context, domain, target string) error
}
