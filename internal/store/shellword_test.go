package store

import "testing"

func TestShellWord(t *testing.T) {
	for in, want := range map[string]string{
		"gunicorn":        "gunicorn",
		"my:app":          "my:app",
		"/run/prom-1.d/x": "/run/prom-1.d/x",
		"team a":          "'team a'",
		"it's":            `'it'\''s'`,
		"a*":              "'a*'",
	} {
		if got := ShellWord(in); got != want {
			t.Errorf("ShellWord(%q) = %s, want %s", in, got, want)
		}
	}
}
