// Command gendocs writes promstore's shell completion scripts (completions/)
// and man pages (man/man1/) from the command tree, so that what is
// committed and packaged is exactly what the binary would print.
//
// Run it from the repository root through `make completions man`, or
//
//	go run ./cmd/gendocs [-root DIR] [completions] [man]
//
// With no argument it writes both. The test beside it fails when the
// committed files differ from what it would write.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/promstore/promstore/internal/commands"
)

// Directories, relative to the repository root, that gendocs owns.
const (
	completionsDir = "completions"
	manDir         = "man/man1"
)

// completionFiles maps each shell `promstore completion` supports to the
// file its script is committed as, named as each shell's loader expects.
var completionFiles = map[string]string{
	"bash":       "promstore.bash",
	"zsh":        "_promstore",
	"fish":       "promstore.fish",
	"powershell": "promstore.ps1",
}

// regenerate is the command the staleness test tells people to run.
const regenerate = "make completions man"

func main() {
	root := flag.String("root", ".", "repository root to write completions/ and man/man1/ under")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: gendocs [-root DIR] [completions] [man]\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	kinds := flag.Args()
	if len(kinds) == 0 {
		kinds = []string{"completions", "man"}
	}
	for _, k := range kinds {
		var files map[string][]byte
		var dir, pattern string
		var err error
		switch k {
		case "completions":
			files, err = Completions()
			dir, pattern = completionsDir, ""
		case "man":
			files, err = ManPages()
			dir, pattern = manDir, "*.1"
		default:
			flag.Usage()
			os.Exit(2)
		}
		if err == nil {
			err = writeDir(filepath.Join(*root, dir), files, pattern)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "gendocs: %s: %v\n", k, err)
			os.Exit(1)
		}
		fmt.Fprintf(os.Stderr, "gendocs: wrote %d files to %s\n", len(files), filepath.Join(*root, dir))
	}
}

// quietFactory is a Factory that reads nothing from the real environment,
// so the generated text does not depend on who runs the generator.
func quietFactory(out io.Writer) *commands.Factory {
	return &commands.Factory{
		IO:     &commands.IOStreams{In: strings.NewReader(""), Out: out, ErrOut: io.Discard},
		Getenv: func(string) string { return "" },
		Now:    func() time.Time { return time.Unix(0, 0).UTC() },
	}
}

// Completions returns each shell's completion script, keyed by file name,
// exactly as `promstore completion <shell>` prints it.
func Completions() (map[string][]byte, error) {
	files := map[string][]byte{}
	for shell, name := range completionFiles {
		var out bytes.Buffer
		if code := commands.Execute(context.Background(), quietFactory(&out), []string{"completion", shell}); code != commands.ExitOK {
			return nil, fmt.Errorf("promstore completion %s: exit status %d", shell, code)
		}
		if out.Len() == 0 {
			return nil, fmt.Errorf("promstore completion %s printed nothing", shell)
		}
		files[name] = out.Bytes()
	}
	return files, nil
}

// thDate matches the date field of a man page's .TH line.
var thDate = regexp.MustCompile(`(?m)^(\.TH "[^"]*" "[^"]*" )"[^"]*"`)

// ManPages returns a section 1 man page for every available command
// (including cobra's `completion` commands), keyed by file name, e.g.
// "promstore-dump.1". The pages carry no date and no generator stamp, so
// regenerating an unchanged tree changes nothing.
func ManPages() (map[string][]byte, error) {
	root := commands.NewRootCmd(quietFactory(io.Discard))
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	root.InitDefaultVersionFlag() // cobra adds --version only when it runs
	if !hasCommand(root, "completion") {
		return nil, errors.New("the command tree has no completion command")
	}
	files := map[string][]byte{}
	var visit func(c *cobra.Command) error
	visit = func(c *cobra.Command) error {
		if c != root && (!c.IsAvailableCommand() || c.IsAdditionalHelpTopicCommand()) {
			return nil
		}
		c.DisableAutoGenTag = true
		c.Long = escapeTags(indentBlocks(c.Long))
		hdr := &doc.GenManHeader{
			Section: "1",
			Source:  "promstore",
			Manual:  "promstore manual",
			Date:    &time.Time{},
		}
		var buf bytes.Buffer
		if err := doc.GenMan(c, hdr, &buf); err != nil {
			return fmt.Errorf("man page of %q: %w", c.CommandPath(), err)
		}
		page := thDate.ReplaceAll(buf.Bytes(), []byte(`$1""`))
		files[strings.ReplaceAll(c.CommandPath(), " ", "-")+".1"] = page
		for _, sub := range c.Commands() {
			if err := visit(sub); err != nil {
				return err
			}
		}
		return nil
	}
	if err := visit(root); err != nil {
		return nil, err
	}
	return files, nil
}

// indentBlocks makes a code block of each paragraph of a help text whose
// lines are all indented by two spaces (a table laid out by hand, such as
// cleanup's): as a Markdown paragraph its first line lost its indentation
// and the table its alignment.
func indentBlocks(long string) string {
	paras := strings.Split(long, "\n\n")
	for i, para := range paras {
		lines := strings.Split(para, "\n")
		block := !strings.HasPrefix(strings.TrimLeft(para, "\n"), "    ")
		for _, l := range lines {
			if l != "" && !strings.HasPrefix(l, "  ") {
				block = false
			}
		}
		if !block || strings.TrimSpace(para) == "" {
			continue
		}
		for j, l := range lines {
			if l != "" {
				lines[j] = "  " + l
			}
		}
		paras[i] = strings.Join(lines, "\n")
	}
	return strings.Join(paras, "\n\n")
}

// htmlTag is what Markdown takes for an HTML tag: "<n>", "<prefix>".
var htmlTag = regexp.MustCompile(`<([A-Za-z/][^<>\s]*>)`)

// escapeTags escapes the words of a help text that md2man, reading it as
// Markdown, would take for HTML tags and drop ("archive-<n>" became
// "archive-"). Lines of a code block (indented by a tab or four spaces
// after a blank line) are printed as they are, backslashes included, so
// they are left alone.
func escapeTags(long string) string {
	lines := strings.Split(long, "\n")
	code, blank := false, true
	for i, l := range lines {
		indented := strings.HasPrefix(l, "\t") || strings.HasPrefix(l, "    ")
		switch {
		case strings.TrimSpace(l) == "":
			blank = true
			continue
		case indented && (blank || code):
			code = true
		default:
			code = false
			lines[i] = htmlTag.ReplaceAllString(l, `\<$1`)
		}
		blank = false
	}
	return strings.Join(lines, "\n")
}

func hasCommand(c *cobra.Command, name string) bool {
	for _, sub := range c.Commands() {
		if sub.Name() == name {
			return true
		}
	}
	return false
}

// writeDir writes files into dir and removes the files matching pattern
// that are no longer generated (a command that went away). An empty
// pattern removes nothing.
func writeDir(dir string, files map[string][]byte, pattern string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), files[n], 0o644); err != nil {
			return err
		}
	}
	if pattern == "" {
		return nil
	}
	old, err := filepath.Glob(filepath.Join(dir, pattern))
	if err != nil {
		return err
	}
	for _, p := range old {
		if _, ok := files[filepath.Base(p)]; !ok {
			if err := os.Remove(p); err != nil {
				return err
			}
		}
	}
	return nil
}
