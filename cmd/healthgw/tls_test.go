package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// writeSelfSigned writes a self-signed certificate for 127.0.0.1 with the
// given common name, and its key, as PEM files in dir; it returns the
// paths and the certificate.
func writeSelfSigned(t *testing.T, dir, cn string) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if cert, err = x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := writeFileAtomic(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeFileAtomic(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, cert
}

// tlsGateway serves a test gateway's API over TLS through serveTLS, with
// the reloads channel the test triggers.
type tlsGateway struct {
	url     string
	reloads chan struct{}
	results chan error
}

func newTLSGateway(t *testing.T, certFile, keyFile string) *tlsGateway {
	t.Helper()
	g := newTestGateway(t)
	cfg := g.cfg
	cfg.TLSCert, cfg.TLSKey = certFile, keyFile
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tg := &tlsGateway{url: "https://" + ln.Addr().String(), reloads: make(chan struct{}), results: make(chan error, 1)}
	tln, h, stop, err := serveTLS(cfg, ln, g.api.Handler(), tg.reloads, slog.New(slog.DiscardHandler), func(err error) { tg.results <- err })
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: readHeaderTimeout}
	go func() { _ = srv.Serve(tln) }()
	t.Cleanup(func() { srv.Close(); stop() })
	return tg
}

// reload triggers a reload and waits for its outcome.
func (tg *tlsGateway) reload(t *testing.T) error {
	t.Helper()
	select {
	case tg.reloads <- struct{}{}:
	case <-t.Context().Done():
		t.Fatal("reload not taken")
	}
	select {
	case err := <-tg.results:
		return err
	case <-t.Context().Done():
		t.Fatal("reload did not finish")
		return nil
	}
}

func clientTrusting(certs ...*x509.Certificate) *http.Client {
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return &http.Client{Timeout: scaledTimeout(30 * time.Second), Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, MaxIdleConnsPerHost: 1}}
}

func getTLS(t *testing.T, c *http.Client, url string) *http.Response {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// TestTLSReloadAndHSTS: the gateway serves HTTPS with HSTS; a reload swaps
// the certificate for new connections while an open connection keeps
// working; a reload of broken files keeps the current certificate.
func TestTLSReloadAndHSTS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, one := writeSelfSigned(t, dir, "one")
	tg := newTLSGateway(t, certFile, keyFile)

	_, _, two := writeSelfSigned(t, t.TempDir(), "two") // only to trust it
	kept := clientTrusting(one, two)
	resp := getTLS(t, kept, tg.url+"/healthz")
	if resp.StatusCode != http.StatusOK || resp.TLS.PeerCertificates[0].Subject.CommonName != "one" {
		t.Fatalf("first request: %d, certificate %q", resp.StatusCode, resp.TLS.PeerCertificates[0].Subject.CommonName)
	}
	if got := resp.Header.Get("Strict-Transport-Security"); got != "max-age=63072000; includeSubDomains" {
		t.Errorf("Strict-Transport-Security %q", got)
	}

	// New files (another key pair) in place, then the reload.
	_, _, two = writeSelfSigned(t, dir, "two")
	if err := tg.reload(t); err != nil {
		t.Fatalf("reload: %v", err)
	}
	reused := false
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(t.Context(), &httptrace.ClientTrace{
		GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused },
	}), "GET", tg.url+"/healthz", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err = kept.Do(req)
	if err != nil {
		t.Fatalf("the open connection after the reload: %v", err)
	}
	resp.Body.Close()
	if !reused || resp.StatusCode != http.StatusOK || resp.TLS.PeerCertificates[0].Subject.CommonName != "one" {
		t.Errorf("the open connection after the reload: reused %v, %d, certificate %q; want it kept, on the old certificate",
			reused, resp.StatusCode, resp.TLS.PeerCertificates[0].Subject.CommonName)
	}
	resp = getTLS(t, clientTrusting(two), tg.url+"/healthz")
	if resp.TLS.PeerCertificates[0].Subject.CommonName != "two" {
		t.Errorf("a new connection after the reload got %q, want two", resp.TLS.PeerCertificates[0].Subject.CommonName)
	}

	// A broken file: the reload fails and the current certificate stays.
	if err := os.WriteFile(certFile, []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := tg.reload(t); err == nil || !strings.Contains(err.Error(), certFile) {
		t.Errorf("reload of a broken file: %v, want an error naming %s", err, certFile)
	}
	resp = getTLS(t, clientTrusting(two), tg.url+"/healthz")
	if resp.TLS.PeerCertificates[0].Subject.CommonName != "two" {
		t.Errorf("after a failed reload the certificate is %q, want two", resp.TLS.PeerCertificates[0].Subject.CommonName)
	}
}

// TestNoHSTSWithoutTLS: plain http never sends Strict-Transport-Security.
func TestNoHSTSWithoutTLS(t *testing.T) {
	g := newTestGateway(t)
	resp, err := http.Get(g.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Strict-Transport-Security"); got != "" {
		t.Errorf("plain http sent Strict-Transport-Security %q", got)
	}
}

// TestSIGHUPReloads: a real SIGHUP to the process is delivered as a
// reload.
func TestSIGHUPReloads(t *testing.T) {
	reloads, stop := sighupReloads()
	defer stop()
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	select {
	case <-reloads:
	case <-time.After(scaledTimeout(30 * time.Second)):
		t.Fatal("SIGHUP was not delivered as a reload")
	}
}

// TestServeTLSConfig: the TLS flags are validated, TLS makes the default
// base URL https, and the development IdP and ZK setup are refused on a
// non-loopback address unless forced.
func TestServeTLSConfig(t *testing.T) {
	certFile, keyFile, _ := writeSelfSigned(t, t.TempDir(), "cfg")
	prod := []string{"--dev-idp=false", "--patient-issuer", "https://idp.example", "--patient-jwks", "jwks.json", "--zk-dev-setup=false"}
	for _, tc := range []struct {
		name    string
		args    []string
		wantErr []string // substrings; nil: no error
		baseURL string
	}{
		{"loopback with dev defaults", []string{"--addr", "127.0.0.1:8080"}, nil, "http://127.0.0.1:8080"},
		{"ipv6 loopback", []string{"--addr", "[::1]:8080"}, nil, "http://[::1]:8080"},
		{"localhost", []string{"--addr", "localhost:8080"}, nil, "http://localhost:8080"},
		{"all interfaces with dev defaults", []string{"--addr", "0.0.0.0:8080"}, []string{"refusing to listen on 0.0.0.0:8080", "--dev-idp", "--zk-dev-setup", "--allow-dev-on-public"}, ""},
		{"empty host", []string{"--addr", ":8080"}, []string{"not a loopback address", "--dev-idp"}, ""},
		{"public IP, only the ZK dev setup", append([]string{"--addr", "192.0.2.1:8080"}, prod[:5]...), []string{"--zk-dev-setup"}, ""},
		{"forced", []string{"--addr", "0.0.0.0:8080", "--allow-dev-on-public"}, nil, "http://127.0.0.1:8080"},
		{"production on all interfaces", append([]string{"--addr", "0.0.0.0:8443", "--tls-cert", certFile, "--tls-key", keyFile}, prod...), nil, "https://127.0.0.1:8443"},
		{"TLS with an explicit base URL", []string{"--tls-cert", certFile, "--tls-key", keyFile, "--base-url", "https://gw.example"}, nil, "https://gw.example"},
		{"cert without key", []string{"--tls-cert", certFile}, []string{"--tls-cert and --tls-key go together"}, ""},
		{"key is not the cert's", []string{"--tls-cert", certFile, "--tls-key", certFile}, []string{"--tls-cert/--tls-key"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := &env{getenv: func(string) string { return "" }, stdout: io.Discard, stderr: io.Discard}
			cfg, _, err := loadServeConfig(e, tc.args)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("loadServeConfig: %v", err)
				}
				if cfg.BaseURL != tc.baseURL {
					t.Errorf("base URL %q, want %q", cfg.BaseURL, tc.baseURL)
				}
				return
			}
			if err == nil {
				t.Fatal("loadServeConfig succeeded")
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}
