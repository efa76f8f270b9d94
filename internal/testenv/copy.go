package testenv

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// CopyStore copies the regular files of src whose names do not start with
// a dot (shards, a cleanup journal, ...) into a new temporary directory,
// keeping their modification times, and returns it.
func CopyStore(t testing.TB, src string) string {
	t.Helper()
	dst := t.TempDir()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		CopyFile(t, filepath.Join(src, e.Name()), filepath.Join(dst, e.Name()))
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(filepath.Join(dst, e.Name()), fi.ModTime(), fi.ModTime()); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// CopyFile copies the file src to dst.
func CopyFile(t testing.TB, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// DBFiles returns the *.db file names of dir with their contents, to
// tell whether a run changed a store's files.
func DBFiles(t testing.TB, dir string) map[string]string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range ents {
		if ok, _ := filepath.Match("*.db", e.Name()); !ok || strings.HasPrefix(e.Name(), ".") {
			continue // not a file Python's glob("*.db") finds
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = string(b)
	}
	return out
}
