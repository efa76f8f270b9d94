package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/promstore/promstore/internal/commands"
	"github.com/promstore/promstore/internal/testenv"
)

// generated returns every generated file keyed by its path relative to the
// repository root, and the pattern of stale files per directory.
func generated(t *testing.T) map[string]map[string][]byte {
	t.Helper()
	comp, err := Completions()
	if err != nil {
		t.Fatalf("Completions: %v", err)
	}
	man, err := ManPages()
	if err != nil {
		t.Fatalf("ManPages: %v", err)
	}
	return map[string]map[string][]byte{completionsDir: comp, manDir: man}
}

// TestGeneratedFilesCurrent fails when the committed completion scripts or
// man pages differ from what the command tree generates now.
func TestGeneratedFilesCurrent(t *testing.T) {
	root := testenv.RepoRoot(t)
	gen := generated(t)
	if testenv.Update() {
		for dir, files := range gen {
			pattern := ""
			if dir == manDir {
				pattern = "*.1"
			}
			if err := writeDir(filepath.Join(root, dir), files, pattern); err != nil {
				t.Fatal(err)
			}
		}
	}
	var stale []string
	for dir, files := range gen {
		for name, want := range files {
			rel := filepath.Join(dir, name)
			got, err := os.ReadFile(filepath.Join(root, rel))
			switch {
			case os.IsNotExist(err):
				stale = append(stale, rel+" (missing)")
			case err != nil:
				t.Fatal(err)
			case !bytes.Equal(got, want):
				stale = append(stale, rel+" (differs)")
			}
		}
	}
	extra, err := filepath.Glob(filepath.Join(root, manDir, "*.1"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range extra {
		if _, ok := gen[manDir][filepath.Base(p)]; !ok {
			stale = append(stale, filepath.Join(manDir, filepath.Base(p))+" (no such command any more)")
		}
	}
	if len(stale) > 0 {
		sort.Strings(stale)
		t.Errorf("generated files are stale; run `%s` (or `go test ./cmd/gendocs -update`) and commit the result:\n  %s",
			regenerate, strings.Join(stale, "\n  "))
	}
}

// The output must not depend on the environment of whoever generates it.
func TestGeneratedFilesIgnoreEnvironment(t *testing.T) {
	a := generated(t)
	for _, k := range []string{"PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir", "PROMETHEUS_REDIS_URL", "REDIS_HOST", "REDIS_KEY_PREFIX"} {
		t.Setenv(k, "/elsewhere-"+k)
	}
	t.Setenv("SOURCE_DATE_EPOCH", "1")
	b := generated(t)
	for dir := range a {
		for name := range a[dir] {
			if !bytes.Equal(a[dir][name], b[dir][name]) {
				t.Errorf("%s/%s changes with the environment", dir, name)
			}
		}
	}
}

// Every command a user can run has a page, and the pages carry no date
// or generator stamp that would make them change on every run.
func TestManPagesCoverTheTree(t *testing.T) {
	pages, err := ManPages()
	if err != nil {
		t.Fatal(err)
	}
	f := quietFactory(&bytes.Buffer{})
	root := commands.NewRootCmd(f)
	root.InitDefaultCompletionCmd()
	var want []string
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		want = append(want, strings.ReplaceAll(c.CommandPath(), " ", "-")+".1")
		for _, s := range c.Commands() {
			if s.IsAvailableCommand() && s.Name() != "help" {
				walk(s)
			}
		}
	}
	walk(root)
	for _, name := range append(want, "promstore-completion-bash.1", "promstore-dump.1", "promstore-version.1") {
		if _, ok := pages[name]; !ok {
			t.Errorf("no man page %s", name)
		}
	}
	if len(pages) != len(want) {
		t.Errorf("%d pages for %d commands", len(pages), len(want))
	}
	for name, p := range pages {
		s := string(p)
		if !strings.HasPrefix(s, ".nh\n.TH \"") {
			t.Errorf("%s does not start with a .TH header: %.40q", name, s)
		}
		if strings.Contains(s, "Auto generated") || strings.Contains(s, "Jan 0001") {
			t.Errorf("%s carries a generator stamp or date", name)
		}
		if !strings.Contains(s, ".SH SYNOPSIS") || !strings.Contains(s, ".SH DESCRIPTION") {
			t.Errorf("%s lacks SYNOPSIS or DESCRIPTION", name)
		}
	}
	if !strings.Contains(string(pages["promstore-dump.1"]), "--match") {
		t.Errorf("promstore-dump.1 does not document --match")
	}
}

func TestWriteDirRemovesStalePages(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"promstore-gone.1", "README", "promstore.1"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("old"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := writeDir(dir, map[string][]byte{"promstore.1": []byte("new")}, "*.1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "promstore-gone.1")); !os.IsNotExist(err) {
		t.Errorf("stale page kept: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "README")); err != nil {
		t.Errorf("file not matching the pattern removed: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "promstore.1")); string(b) != "new" {
		t.Errorf("promstore.1 = %q, want new", b)
	}
}

// TestManPagesKeepAngleBrackets: the help texts name placeholders in angle
// brackets ("archive-<n>", "<prefix>:promstore:cleanup-journal"), which
// md2man took for HTML tags and dropped, so the pages said "archive-" and
// ":promstore:cleanup-journal". Every such word of a command's help text
// is on its page.
func TestManPagesKeepAngleBrackets(t *testing.T) {
	angle := regexp.MustCompile(`<[A-Za-z][^<>\s]*>`)
	found := 0
	eachPage(t, func(c *cobra.Command, page string) {
		if strings.Contains(page, `\<`) || strings.Contains(page, `\\<`) {
			t.Errorf("the man page of %q shows an escaping backslash before <", c.CommandPath())
		}
		for _, w := range angle.FindAllString(c.Long, -1) {
			found++
			if !strings.Contains(page, w) {
				t.Errorf("the man page of %q lacks %s, which its help text has", c.CommandPath(), w)
			}
		}
	})
	if found == 0 {
		t.Fatal("no help text holds a word in angle brackets: the test checks nothing")
	}
}

// eachPage calls fn with every command a user can run and its man page.
func eachPage(t *testing.T, fn func(c *cobra.Command, page string)) {
	t.Helper()
	pages, err := ManPages()
	if err != nil {
		t.Fatal(err)
	}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		fn(c, string(pages[strings.ReplaceAll(c.CommandPath(), " ", "-")+".1"]))
		for _, s := range c.Commands() {
			if s.IsAvailableCommand() {
				walk(s)
			}
		}
	}
	walk(commands.NewRootCmd(quietFactory(&bytes.Buffer{})))
}

// TestManPagesKeepIndentedTables: a help text's paragraph indented by two
// spaces (cleanup's table of what happens to which shards) is a layout
// the page must keep; as Markdown it was a paragraph whose first line lost
// its indentation, so the table's first row stood out of line.
func TestManPagesKeepIndentedTables(t *testing.T) {
	found := 0
	eachPage(t, func(c *cobra.Command, page string) {
		page = "\n" + page + "\n"
		for _, para := range strings.Split(c.Long, "\n\n") {
			lines := strings.Split(strings.Trim(para, "\n"), "\n")
			if !strings.HasPrefix(lines[0], "  ") || strings.HasPrefix(lines[0], "    ") {
				continue
			}
			found++
			for _, l := range lines {
				if !strings.Contains(page, "\n"+strings.TrimPrefix(l, "  ")+"\n") {
					t.Errorf("the man page of %q lacks the line %q of an indented block as it stands", c.CommandPath(), l)
				}
			}
		}
	})
	if found == 0 {
		t.Fatal("no help text holds an indented block: the test checks nothing")
	}
}

// TestManPageListsVersionFlag: promstore(1) lists --version, which cobra
// adds only when the command runs.
func TestManPageListsVersionFlag(t *testing.T) {
	pages, err := ManPages()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(pages["promstore.1"]), `\fB--version\fP`) {
		t.Errorf("promstore.1 lacks --version:\n%s", pages["promstore.1"])
	}
}
