package testenv

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// Get answers a GET of path by h in-process and returns the body; it
// fails the test unless the status is 200.
func Get(tb testing.TB, h http.Handler, path string) string {
	tb.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
	if w.Code != http.StatusOK {
		tb.Fatalf("GET %s: HTTP %d: %s", path, w.Code, w.Body)
	}
	return w.Body.String()
}
