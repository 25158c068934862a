package store

import (
	"fmt"
	"slices"
	"strings"
)

// systemFlags maps the lower-case spelling of each settable system flag to
// its canonical form. \Recent is not settable (RFC 3501 2.3.2).
var systemFlags = map[string]string{
	`\seen`:     FlagSeen,
	`\answered`: FlagAnswered,
	`\flagged`:  FlagFlagged,
	`\deleted`:  FlagDeleted,
	`\draft`:    FlagDraft,
}

// NormalizeFlags validates flags and returns them canonical, deduplicated
// and sorted: system flags in their canonical case (`\seen` → `\Seen`,
// RFC 3501 flags are case-insensitive), keywords as written (deduplicated
// case-insensitively, first spelling wins). A keyword must be an IMAP atom
// (RFC 3501 9: no space, control character, "(){%*\"\\]") and an unknown
// backslash flag is refused; the error wraps ErrBadName. nil gives nil.
func NormalizeFlags(flags []string) ([]string, error) {
	if len(flags) == 0 {
		return nil, nil
	}
	out := make([]string, 0, len(flags))
	seen := make(map[string]bool, len(flags))
	for _, f := range flags {
		lf := strings.ToLower(f)
		if sys, ok := systemFlags[lf]; ok {
			f = sys
		} else if err := validateKeyword(f); err != nil {
			return nil, err
		}
		if !seen[lf] {
			seen[lf] = true
			out = append(out, f)
		}
	}
	slices.Sort(out)
	return out, nil
}

func validateKeyword(f string) error {
	if f == "" || len(f) > 255 {
		return fmt.Errorf("store: flag %q: empty or too long: %w", truncate(f), ErrBadName)
	}
	for i := 0; i < len(f); i++ {
		c := f[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`(){%*"\]`, c) >= 0 {
			return fmt.Errorf("store: flag %q: not an atom: %w", truncate(f), ErrBadName)
		}
	}
	return nil
}

// ApplyFlags returns the flags that result from op on cur with flags. cur
// and flags must be normalised (NormalizeFlags); the result is normalised
// and never aliases cur, so that callers can share flag slices between
// readers.
func ApplyFlags(cur []string, op FlagOp, flags []string) []string {
	var out []string
	switch op {
	case FlagsReplace:
		out = slices.Clone(flags)
	case FlagsAdd:
		out = slices.Clone(cur)
		for _, f := range flags {
			if !HasFlag(out, f) {
				out = append(out, f)
			}
		}
	case FlagsRemove:
		for _, f := range cur {
			if !HasFlag(flags, f) {
				out = append(out, f)
			}
		}
	default:
		out = slices.Clone(cur)
	}
	slices.Sort(out)
	if len(out) == 0 {
		return nil
	}
	return out
}

// HasFlag reports whether flags holds f, comparing case-insensitively.
func HasFlag(flags []string, f string) bool {
	for _, g := range flags {
		if strings.EqualFold(g, f) {
			return true
		}
	}
	return false
}

// Exceeded reports whether a mailbox holding bytes octets in messages
// messages would break q after adding addBytes octets in addMessages
// messages. Removing mail (negative additions) never exceeds.
func (q Quota) Exceeded(bytes, messages, addBytes, addMessages int64) bool {
	if addBytes <= 0 && addMessages <= 0 {
		return false
	}
	return q.Bytes > 0 && bytes+addBytes > q.Bytes ||
		q.Messages > 0 && messages+addMessages > q.Messages
}
