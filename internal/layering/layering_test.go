package layering

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pkg is the part of `go list -json` output the rules need.
type pkg struct {
	ImportPath   string
	Imports      []string
	TestImports  []string
	XTestImports []string
}

// class is where a package of the module sits in ARCHITECTURE.md.
type class struct {
	layer int    // 0 to 3; -1 for an unclassified package
	group string // the top-level unit: "root", "resolver", "smtpclient", "internal/x", ...
	// storeImpl is set for store/<impl> packages (not store/storetest).
	storeImpl bool
}

var layer2 = []string{"smtpserver", "smtpclient", "queue", "pop3", "imapbackend", "antispam", "filter"}

// classify places rel, a package path relative to the module root ("" for
// the root package).
func classify(rel string) class {
	top, rest, _ := strings.Cut(rel, "/")
	switch {
	case rel == "":
		return class{layer: 0, group: "root"}
	case top == "internal" && strings.HasPrefix(rest, "e2e"):
		return class{layer: 3, group: "internal/e2e"}
	case top == "internal":
		sub, _, _ := strings.Cut(rest, "/")
		return class{layer: 0, group: "internal/" + sub}
	case top == "resolver":
		return class{layer: 1, group: "resolver"}
	case top == "store":
		impl := rest != "" && rest != "storetest" && !strings.HasPrefix(rest, "storetest/")
		return class{layer: 1, group: "store", storeImpl: impl}
	case slices.Contains(layer2, top):
		return class{layer: 2, group: top}
	case top == "examples" || top == "mailtest":
		return class{layer: 3, group: top}
	}
	return class{layer: -1, group: top}
}

// check returns the violations of the rules in pkgs, the packages of
// module; isStd reports whether an import path is in the standard library.
func check(module string, pkgs []pkg, isStd func(string) bool) []string {
	var violations []string
	rel := func(path string) (string, bool) {
		if path == module {
			return "", true
		}
		if r, ok := strings.CutPrefix(path, module+"/"); ok {
			return r, true
		}
		return "", false
	}
	for _, p := range pkgs {
		from, ok := rel(p.ImportPath)
		if !ok {
			continue
		}
		fc := classify(from)
		if fc.layer < 0 {
			violations = append(violations, fmt.Sprintf("%s: top-level directory %q is not classified in internal/layering", p.ImportPath, fc.group))
			continue
		}
		kinds := []struct {
			name    string
			imports []string
			test    bool
		}{{"imports", p.Imports, false}, {"test imports", p.TestImports, true}, {"x-test imports", p.XTestImports, true}}
		for _, k := range kinds {
			for _, imp := range k.imports {
				if msg := checkImport(fc, from, imp, k.test, rel, isStd); msg != "" {
					violations = append(violations, fmt.Sprintf("%s %s %s: %s", p.ImportPath, k.name, imp, msg))
				}
			}
		}
	}
	sort.Strings(violations)
	return violations
}

func checkImport(fc class, from, imp string, test bool, rel func(string) (string, bool), isStd func(string) bool) string {
	to, own := rel(imp)
	if !own {
		switch {
		case isStd(imp):
			return ""
		case fc.group == "root" && !test:
			return "the root package imports only the standard library"
		}
		return "" // third-party modules are allowed everywhere else
	}
	tc := classify(to)
	if fc.group == tc.group && !tc.storeImpl {
		return "" // within one unit; store implementations are checked below
	}
	switch {
	case tc.layer < 0:
		return "imports an unclassified package"
	case fc.group == "root" && to != "":
		return "the root package imports nothing of this module"
	case tc.storeImpl && fc.layer != 3 && !test && !(fc.storeImpl && sameImpl(from, to)):
		return "store implementations are imported only by examples, the test double, end-to-end tests and _test files"
	case fc.layer == 3:
		return ""
	case tc.layer == 3:
		return "layer 3 (examples, mailtest, e2e) is imported by nobody else"
	case fc.layer == 2 && tc.layer == 2:
		return "layer-2 packages never import each other (ARCHITECTURE.md rule 1)"
	case tc.layer > fc.layer:
		return fmt.Sprintf("a layer-%d package imports layer %d", fc.layer, tc.layer)
	case fc.layer == 1 && tc.layer == 1 && fc.group != tc.group:
		return "resolver and store do not import each other"
	}
	return ""
}

// sameImpl reports whether two store/<impl>/… paths are in the same
// implementation.
func sameImpl(a, b string) bool {
	top := func(p string) string {
		parts := strings.SplitN(p, "/", 3)
		if len(parts) < 2 {
			return p
		}
		return parts[0] + "/" + parts[1]
	}
	return top(a) == top(b)
}

func goList(t *testing.T, dir string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "go %s: %s", strings.Join(args, " "), stderr.String())
	return out
}

// TestLayering checks the module's real import graph.
func TestLayering(t *testing.T) {
	root := strings.TrimSpace(string(goList(t, ".", "list", "-m", "-f", "{{.Dir}}")))
	module := strings.TrimSpace(string(goList(t, root, "list", "-m")))
	std := map[string]bool{"C": true}
	for _, p := range strings.Fields(string(goList(t, root, "list", "std"))) {
		std[p] = true
	}
	// -e: a package that does not build is still listed with its imports.
	out := goList(t, root, "list", "-e", "-json=ImportPath,Imports,TestImports,XTestImports", "./...")
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else {
			require.NoError(t, err)
		}
		pkgs = append(pkgs, p)
	}
	require.NotEmpty(t, pkgs)
	var seenRoot bool
	for _, p := range pkgs {
		seenRoot = seenRoot || p.ImportPath == module
	}
	require.True(t, seenRoot, "go list did not list the root package")
	for _, v := range check(module, pkgs, func(p string) bool { return std[p] }) {
		t.Error(v)
	}
}

// TestCheck shows that the checker catches each kind of violation.
func TestCheck(t *testing.T) {
	const m = "example.org/mb"
	isStd := func(p string) bool { return !strings.Contains(strings.SplitN(p, "/", 2)[0], ".") }
	tests := []struct {
		name string
		pkg  pkg
		bad  bool
	}{
		{"root imports stdlib", pkg{ImportPath: m, Imports: []string{"net", "crypto/tls"}}, false},
		{"root tests use testify", pkg{ImportPath: m, TestImports: []string{"github.com/stretchr/testify/assert"}, XTestImports: []string{m}}, false},
		{"root imports third party", pkg{ImportPath: m, Imports: []string{"golang.org/x/net/idna"}}, true},
		{"root imports resolver", pkg{ImportPath: m, Imports: []string{m + "/resolver"}}, true},
		{"root test imports store", pkg{ImportPath: m, XTestImports: []string{m + "/store"}}, true},
		{"resolver imports root and miekg", pkg{ImportPath: m + "/resolver", Imports: []string{m, "github.com/miekg/dns"}}, false},
		{"resolver test imports dnstest", pkg{ImportPath: m + "/resolver", XTestImports: []string{m + "/resolver/dnstest", m + "/resolver"}}, false},
		{"resolver imports store", pkg{ImportPath: m + "/resolver", Imports: []string{m + "/store"}}, true},
		{"store imports smtpserver", pkg{ImportPath: m + "/store", Imports: []string{m + "/smtpserver"}}, true},
		{"store imports internal", pkg{ImportPath: m + "/store/maildir", Imports: []string{m + "/internal/lockfile", m + "/store"}}, false},
		{"storetest imports store", pkg{ImportPath: m + "/store/storetest", Imports: []string{m + "/store"}}, false},
		{"storetest imports memstore", pkg{ImportPath: m + "/store/storetest", Imports: []string{m + "/store/memstore"}}, true},
		{"maildir test imports storetest", pkg{ImportPath: m + "/store/maildir", XTestImports: []string{m + "/store/storetest", m + "/store/maildir"}}, false},
		{"maildir imports memstore", pkg{ImportPath: m + "/store/maildir", Imports: []string{m + "/store/memstore"}}, true},
		{"maildir imports own sub-package", pkg{ImportPath: m + "/store/maildir", Imports: []string{m + "/store/maildir/index"}}, false},
		{"queue imports store and resolver", pkg{ImportPath: m + "/queue", Imports: []string{m + "/store", m + "/resolver", m}}, false},
		{"queue imports smtpclient", pkg{ImportPath: m + "/queue", Imports: []string{m + "/smtpclient"}}, true},
		{"queue test imports smtpclient", pkg{ImportPath: m + "/queue", XTestImports: []string{m + "/smtpclient"}}, true},
		{"queue internal test imports sub-package of pop3", pkg{ImportPath: m + "/queue", TestImports: []string{m + "/pop3/client"}}, true},
		{"smtpserver sub-package imports smtpserver", pkg{ImportPath: m + "/smtpserver/lmtp", Imports: []string{m + "/smtpserver"}}, false},
		{"imapbackend imports memstore", pkg{ImportPath: m + "/imapbackend", Imports: []string{m + "/store/memstore"}}, true},
		{"imapbackend test imports memstore", pkg{ImportPath: m + "/imapbackend", XTestImports: []string{m + "/store/memstore", m + "/store/maildir"}}, false},
		{"pop3 imports examples", pkg{ImportPath: m + "/pop3", TestImports: []string{m + "/examples/mailserver"}}, true},
		{"antispam imports mailtest", pkg{ImportPath: m + "/antispam", XTestImports: []string{m + "/mailtest"}}, true},
		{"internal imports resolver", pkg{ImportPath: m + "/internal/postfixtest", Imports: []string{m + "/resolver"}}, true},
		{"internal imports root", pkg{ImportPath: m + "/internal/postfixtest", Imports: []string{m}}, false},
		{"examples import everything", pkg{ImportPath: m + "/examples/mailserver", Imports: []string{m + "/smtpserver", m + "/queue", m + "/store/maildir", m + "/smtpclient"}}, false},
		{"mailtest imports memstore", pkg{ImportPath: m + "/mailtest", Imports: []string{m + "/store/memstore", m + "/smtpserver"}}, false},
		{"e2e imports everything", pkg{ImportPath: m + "/internal/e2e", Imports: []string{m + "/store/maildir", m + "/pop3", m + "/examples/mailserver"}}, false},
		{"unknown top-level directory", pkg{ImportPath: m + "/newthing", Imports: []string{"fmt"}}, true},
		{"import of an unknown directory", pkg{ImportPath: m + "/queue", Imports: []string{m + "/newthing"}}, true},
		{"package of another module", pkg{ImportPath: "example.org/other", Imports: []string{m + "/store/memstore"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := check(m, []pkg{tt.pkg}, isStd)
			if tt.bad {
				assert.NotEmpty(t, v)
			} else {
				assert.Empty(t, v)
			}
		})
	}

	// A whole graph: two violations among correct packages, both reported.
	graph := []pkg{
		{ImportPath: m, Imports: []string{"errors"}},
		{ImportPath: m + "/smtpclient", Imports: []string{m, m + "/resolver"}},
		{ImportPath: m + "/queue", Imports: []string{m, m + "/smtpclient"}},
		{ImportPath: m + "/pop3", XTestImports: []string{m + "/imapbackend"}},
		{ImportPath: m + "/examples/mailserver", Imports: []string{m + "/queue", m + "/smtpclient"}},
	}
	v := check(m, graph, isStd)
	require.Len(t, v, 2, "%v", v)
	assert.Contains(t, v[0], m+"/pop3 x-test imports "+m+"/imapbackend")
	assert.Contains(t, v[1], m+"/queue imports "+m+"/smtpclient")
}
