package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
)

// tlsConfig is serve's TLS and exposure settings (part of serveConfig).
type tlsConfig struct {
	TLSCert          string // PEM certificate chain; with TLSKey, serve HTTPS
	TLSKey           string // PEM private key
	AllowDevOnPublic bool   // allow the development IdP / ZK setup on a non-loopback address
}

func (c *tlsConfig) tlsFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.TLSCert, "tls-cert", c.TLSCert, "serve HTTPS with this PEM certificate (chain); reloaded on SIGHUP")
	fs.StringVar(&c.TLSKey, "tls-key", c.TLSKey, "the PEM private key of --tls-cert; reloaded on SIGHUP")
	fs.BoolVar(&c.AllowDevOnPublic, "allow-dev-on-public", c.AllowDevOnPublic,
		"UNSAFE: run the development patient IdP (--dev-idp) or the development zero-knowledge setup (--zk-dev-setup) on a non-loopback --addr")
}

// tlsEnabled reports whether serve terminates TLS itself.
func (c *tlsConfig) tlsEnabled() bool { return c.TLSCert != "" }

// finishTLS validates the TLS settings and the exposure of the
// development components; it makes the default base URL https when TLS is
// on.
func (c *serveConfig) finishTLS(baseURLGiven bool) error {
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	if c.tlsEnabled() {
		if _, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey); err != nil {
			return fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		if !baseURLGiven {
			c.BaseURL = "https://" + strings.TrimPrefix(c.BaseURL, "http://")
		}
	}
	host, _, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return fmt.Errorf("--addr %q: %w", c.Addr, err)
	}
	if isLoopbackHost(host) || c.AllowDevOnPublic {
		return nil
	}
	var dev []string
	if c.DevIdP {
		dev = append(dev, "the development patient IdP (--dev-idp: anyone who reaches it can mint patient tokens; use --dev-idp=false with --patient-issuer and --patient-jwks)")
	}
	if c.ZKDevSetup {
		dev = append(dev, "the development zero-knowledge setup (--zk-dev-setup: its keys can forge proofs; use --zk-dev-setup=false with keys from a ceremony)")
	}
	if len(dev) == 0 {
		return nil
	}
	return fmt.Errorf("refusing to listen on %s, which is not a loopback address, with %s; pass --allow-dev-on-public to force it",
		c.Addr, strings.Join(dev, " and "))
}

// isLoopbackHost reports whether a listen host only accepts connections
// from this machine. An empty host, 0.0.0.0 and :: listen everywhere; a
// name other than localhost is not trusted to stay loopback.
func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// certReloader serves a certificate that can be replaced while the server
// runs: handshakes read the current one (tls.Config.GetCertificate), a
// reload swaps it atomically, and open connections are not touched.
type certReloader struct {
	certFile, keyFile string
	cert              atomic.Pointer[tls.Certificate]
}

func newCertReloader(certFile, keyFile string) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile}
	if err := r.reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// reload reads the files again; on error the current certificate stays.
func (r *certReloader) reload() error {
	c, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("load TLS certificate %s: %w", r.certFile, err)
	}
	if c.Leaf == nil && len(c.Certificate) > 0 {
		if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return fmt.Errorf("load TLS certificate %s: %w", r.certFile, err)
		}
	}
	r.cert.Store(&c)
	return nil
}

func (r *certReloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.cert.Load(), nil
}

// tlsServerConfig is the server's TLS configuration over r.
func (r *certReloader) tlsServerConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.getCertificate, NextProtos: []string{"http/1.1"}}
}

// watchReloads reloads r whenever reloads delivers (serve connects it to
// SIGHUP), until ctx ends; each outcome is logged.
func (r *certReloader) watchReloads(ctx context.Context, reloads <-chan struct{}, logger *slog.Logger, done func(error)) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-reloads:
			err := r.reload()
			if err != nil {
				logger.Error("TLS certificate reload failed; keeping the current one", slog.String("err", err.Error()))
			} else {
				logger.Info("TLS certificate reloaded", slog.String("subject", r.cert.Load().Leaf.Subject.String()),
					slog.Time("not_after", r.cert.Load().Leaf.NotAfter))
			}
			if done != nil {
				done(err)
			}
		}
	}
}

// hstsMaxAge is the Strict-Transport-Security lifetime: two years, as
// hstspreload.org asks.
const hstsMaxAge = 63072000

// withHSTS adds Strict-Transport-Security to every response: only a
// server that terminates TLS sends it (RFC 6797 forbids it over plain
// http).
func withHSTS(h http.Handler) http.Handler {
	v := fmt.Sprintf("max-age=%d; includeSubDomains", hstsMaxAge)
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.TLS != nil {
			w.Header().Set("Strict-Transport-Security", v)
		}
		h.ServeHTTP(w, req)
	})
}

// serveTLS wraps ln and h for TLS when cfg asks for it: the listener
// terminates TLS with a reloadable certificate, responses carry HSTS, and
// every signal on reloads (serve: SIGHUP) reloads the certificate. stop
// ends the reload watcher. Without TLS, ln and h come back as they are.
// onReload, if not nil, learns each reload's outcome.
func serveTLS(cfg serveConfig, ln net.Listener, h http.Handler, reloads <-chan struct{}, logger *slog.Logger, onReload func(error)) (net.Listener, http.Handler, func(), error) {
	if !cfg.tlsEnabled() {
		return ln, h, func() {}, nil
	}
	r, err := newCertReloader(cfg.TLSCert, cfg.TLSKey)
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.watchReloads(ctx, reloads, logger, onReload)
	}()
	return tls.NewListener(ln, r.tlsServerConfig()), withHSTS(h), func() { cancel(); <-done }, nil
}

// sighupReloads delivers a value for every SIGHUP until stop is called.
func sighupReloads() (<-chan struct{}, func()) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGHUP)
	out := make(chan struct{}, 1)
	quit := make(chan struct{})
	go func() {
		for {
			select {
			case <-quit:
				return
			case <-sig:
				select {
				case out <- struct{}{}:
				default: // a reload is already pending
				}
			}
		}
	}()
	return out, func() { signal.Stop(sig); close(quit) }
}
