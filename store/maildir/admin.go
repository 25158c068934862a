package maildir

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/mailblocks/mailblocks/store"
)

// The directory (domains, users with password hashes and quotas, aliases,
// lists, catch-alls) is the JSON form of store.DirectoryData in
// dir/directory.json. Every change takes the flock on dir/directory.lock,
// re-reads the file, applies the change and replaces the file atomically,
// so several processes can administer one store. Readers notice a changed
// file by its inode, size and mtime on their next call.

// AddDomain implements store.Admin.
func (s *Store) AddDomain(ctx context.Context, domain string) error {
	return s.modify(func(d *store.DirectoryData) error { return d.AddDomain(domain) })
}

// Domains implements store.Admin.
func (s *Store) Domains(ctx context.Context) ([]string, error) {
	return s.directory().DomainList(), nil
}

// AddUser implements store.Admin: the directory entry, then the mailbox
// with its default folders (subscribed, with their special-use
// attributes).
func (s *Store) AddUser(ctx context.Context, addr, password string, quota store.Quota) error {
	c, err := store.CanonicalAddress(addr)
	if err != nil {
		return err
	}
	root, err := s.userRoot(c)
	if err != nil {
		return err
	}
	// Hash outside the directory lock: argon2id takes tens of ms.
	hash, err := hashOrEmpty(password, s.opts.HashPassword)
	if err != nil {
		return err
	}
	keep := func(string) (string, error) { return hash, nil }
	if err := s.modify(func(d *store.DirectoryData) error {
		if _, err := d.AddUser(c, password, quota, keep); err != nil {
			return err
		}
		// An existing maildir at that place (moved in by hand, for a
		// migration) is adopted as is, with its UIDs if it has an index.
		return s.makeMailbox(ctx, c, root)
	}); err != nil {
		return err
	}
	return nil
}

func hashOrEmpty(pw string, hash func(string) (string, error)) (string, error) {
	if pw == "" {
		return "", nil
	}
	return hash(pw)
}

// makeMailbox creates the mailbox directory of a new user.
func (s *Store) makeMailbox(ctx context.Context, user, root string) error {
	if err := os.MkdirAll(filepath.Dir(root), 0o700); err != nil {
		return fmt.Errorf("maildir: %w", err)
	}
	s.mbMu.Lock()
	delete(s.mailboxes, user)
	s.mbMu.Unlock()
	mb := &mailbox{s: s, user: user, root: root, folders: map[string]*folder{}}
	if _, err := os.Stat(filepath.Join(root, indexName)); err != nil {
		if err := mb.makeMaildir(root, true); err != nil {
			return err
		}
	}
	subs := map[string]bool{}
	uses := map[string]store.SpecialUse{}
	for _, df := range s.opts.DefaultFolders {
		name, err := checkFolderName(df.Name)
		if err != nil {
			return err
		}
		if name != store.Inbox {
			if err := mb.makeMaildir(mb.folderPath(name), false); err != nil && !errors.Is(err, store.ErrFolderExists) {
				return err
			}
		}
		subs[name] = true
		if df.Use != "" {
			uses[name] = df.Use
		}
	}
	if err := mb.editSubscriptions(func(m map[string]bool) {
		for k := range subs {
			m[k] = true
		}
	}); err != nil {
		return err
	}
	return mb.editSpecialUse(func(m map[string]store.SpecialUse) {
		for k, v := range uses {
			m[k] = v
		}
	})
}

// SetPassword implements store.Admin.
func (s *Store) SetPassword(ctx context.Context, addr, password string) error {
	if _, ok := s.directory().User(addr); !ok {
		return fmt.Errorf("maildir: set password %s: %w", addr, store.ErrNoSuchUser)
	}
	hash, err := hashOrEmpty(password, s.opts.HashPassword)
	if err != nil {
		return err
	}
	keep := func(string) (string, error) { return hash, nil }
	return s.modify(func(d *store.DirectoryData) error { return d.SetPassword(addr, password, keep) })
}

// SetQuota implements store.Admin.
func (s *Store) SetQuota(ctx context.Context, addr string, quota store.Quota) error {
	return s.modify(func(d *store.DirectoryData) error { return d.SetQuota(addr, quota) })
}

// DeleteUser implements store.Admin: the directory entry, then the mail
// (renamed away first, so that the removal looks atomic).
func (s *Store) DeleteUser(ctx context.Context, addr string) error {
	var user string
	if err := s.modify(func(d *store.DirectoryData) error {
		u, err := d.DeleteUser(addr)
		user = u
		return err
	}); err != nil {
		return err
	}
	s.mbMu.Lock()
	delete(s.mailboxes, user)
	s.mbMu.Unlock()
	root, err := s.userRoot(user)
	if err != nil {
		return err
	}
	trash := filepath.Join(s.dir, mailDir, ".deleted-"+randHex(8))
	if err := os.Rename(root, trash); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("maildir: delete user %s: %w", user, err)
	}
	if err := os.RemoveAll(trash); err != nil {
		return fmt.Errorf("maildir: delete user %s: %w", user, err)
	}
	return nil
}

// Users implements store.Admin.
func (s *Store) Users(ctx context.Context) ([]string, error) {
	return s.directory().UserList(), nil
}

// SetAlias implements store.Admin.
func (s *Store) SetAlias(ctx context.Context, alias, target string) error {
	return s.modify(func(d *store.DirectoryData) error { return d.SetAlias(alias, target) })
}

// SetList implements store.Admin.
func (s *Store) SetList(ctx context.Context, addr string, members []string) error {
	return s.modify(func(d *store.DirectoryData) error { return d.SetList(addr, members) })
}

// SetCatchAll implements store.Admin.
func (s *Store) SetCatchAll(ctx context.Context, domain, target string) error {
	return s.modify(func(d *store.DirectoryData) error { return d.SetCatchAll(domain, target) })
}
