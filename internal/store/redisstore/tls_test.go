package redisstore

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/promstore/promstore/internal/testenv"
)

func TestTLS(t *testing.T) {
	cert, key, _ := testenv.SelfSignedCert(t, t.TempDir())
	srv := testenv.StartRedis(t, testenv.RedisOptions{Password: "tlspw", TLS: &testenv.RedisTLS{CertFile: cert, KeyFile: key}})
	loadFixture(t, srv.Client(), "")
	url := srv.URL()
	if !strings.HasPrefix(url, "rediss://") {
		t.Fatalf("URL %q", url)
	}
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"ca", Config{URLs: []string{url}, CAFile: cert}, ""},
		{"ca+servername", Config{URLs: []string{url}, CAFile: cert, ServerName: "localhost"}, ""},
		{"insecure", Config{URLs: []string{url}, InsecureSkipVerify: true}, ""},
		{"unknown ca", Config{URLs: []string{url}}, "certificate"},
		{"wrong name", Config{URLs: []string{url}, CAFile: cert, ServerName: "elsewhere"}, "certificate"},
		{"missing ca file", Config{URLs: []string{url}, CAFile: filepath.Join(t.TempDir(), "none.pem")}, "CA file"},
		{"key without cert", Config{URLs: []string{url}, KeyFile: key}, "cert file and a key file"},
		{"plain to tls port", Config{URLs: []string{"redis://:tlspw@" + srv.Addr()}, ReadTimeout: 300 * time.Millisecond}, srv.Addr()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.DialTimeout = time.Second
			s, err := Open(context.Background(), tt.cfg)
			if tt.wantErr != "" {
				if err == nil {
					s.Close()
					t.Fatalf("open succeeded, want an error with %q", tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "tlspw") {
					t.Errorf("error %q, want %q and no password", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			defer s.Close()
			testenv.CompareExposition(t, dump(t, s), expectedProm(t))
		})
	}
}

// TestTLSMismatchSaysSo: a TLS client of a plain server once failed with
// only "context deadline exceeded"; the error now says what is likely
// wrong, as it does for a plain client hung up on by a TLS server.
func TestTLSMismatchSaysSo(t *testing.T) {
	plain := testenv.StartRedis(t)
	_, err := Open(context.Background(), Config{URLs: []string{"rediss://" + plain.Addr()}, InsecureSkipVerify: true, DialTimeout: time.Second, ReadTimeout: 300 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "no TLS handshake answer: is the server plain Redis? use redis://") || !strings.Contains(err.Error(), plain.Addr()) {
		t.Errorf("rediss:// to a plain server: %v", err)
	}
}

// TestTLSCertificateErrorIsNoMismatch: a TLS server whose certificate the
// client does not trust answered the handshake; the error once added "no
// TLS handshake answer: is the server plain Redis?", which sent the user
// the wrong way. It names the certificate flags instead.
func TestTLSCertificateErrorIsNoMismatch(t *testing.T) {
	cert, key, _ := testenv.SelfSignedCert(t, t.TempDir())
	srv := testenv.StartRedis(t, testenv.RedisOptions{TLS: &testenv.RedisTLS{CertFile: cert, KeyFile: key}})
	for name, cfg := range map[string]Config{
		"unknown ca": {URLs: []string{srv.URL()}},
		"wrong name": {URLs: []string{srv.URL()}, CAFile: cert, ServerName: "elsewhere"},
	} {
		cfg.DialTimeout = time.Second
		s, err := Open(context.Background(), cfg)
		if err == nil {
			s.Close()
			t.Fatalf("%s: open succeeded", name)
		}
		if strings.Contains(err.Error(), "no TLS handshake answer") || !strings.Contains(err.Error(), "--redis-tls-ca") {
			t.Errorf("%s: %v, want the certificate named, not a plain server suspected", name, err)
		}
	}
}

// TestTLSClientCertRequiredSaysSo: a server that wants a client
// certificate answers the handshake with an alert; the error once said
// "no TLS handshake answer: is the server plain Redis?". It names the
// client certificate flags instead.
func TestTLSClientCertRequiredSaysSo(t *testing.T) {
	cert, key, _ := testenv.SelfSignedCert(t, t.TempDir())
	srv := testenv.StartRedis(t, testenv.RedisOptions{TLS: &testenv.RedisTLS{CertFile: cert, KeyFile: key, AuthClients: true}})
	s, err := Open(context.Background(), Config{URLs: []string{srv.URL()}, CAFile: cert, DialTimeout: time.Second})
	if err == nil {
		s.Close()
		t.Fatal("open without a client certificate succeeded")
	}
	if strings.Contains(err.Error(), "no TLS handshake answer") || !strings.Contains(err.Error(), "--redis-tls-cert") {
		t.Errorf("%v, want the client certificate flags named, not a plain server suspected", err)
	}
}
