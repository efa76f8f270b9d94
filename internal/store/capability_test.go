package store

import (
	"testing"
)

type bareStore struct{ Store }

type localStore struct{ bareStore }

func (localStore) Dir() string { return "/d" }

type wrapped struct {
	Store
	inner Store
}

func (w wrapped) Unwrap() Store { return w.inner }

func TestAsSeesThroughWrappers(t *testing.T) {
	l := localStore{}
	for _, tc := range []struct {
		name string
		st   Store
		want bool
	}{
		{"backend", l, true},
		{"wrapped", wrapped{inner: l}, true},
		{"wrapped twice", wrapped{inner: wrapped{inner: l}}, true},
		{"without", bareStore{}, false},
		{"wrapping nothing", wrapped{}, false},
	} {
		got, ok := As[Local](tc.st)
		if ok != tc.want || ok && got.Dir() != "/d" {
			t.Errorf("%s: As[Local] = %v, %v; want ok %v", tc.name, got, ok, tc.want)
		}
		if _, ok := As[Pinger](tc.st); ok {
			t.Errorf("%s: a Pinger found where none is", tc.name)
		}
	}
}
