package redisstore

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/promstore/promstore/internal/testenv"
)

// selfSigned writes a self-signed certificate for 127.0.0.1 and
// "localhost" and its key; the certificate is its own CA.
func selfSigned(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "promstore test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func TestTLS(t *testing.T) {
	cert, key := selfSigned(t)
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
