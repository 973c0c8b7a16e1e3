package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	gnarklog "github.com/consensys/gnark/logger"
	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/client"
	"github.com/healthgw/healthgw/internal/demo"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/registry"
)

// cmdDemo tells the product's story against a running gateway (see
// package demo); it fails (non-zero exit) the moment a step does not
// behave as the story says.
func cmdDemo(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "demo")
	base := fs.String("url", "http://127.0.0.1:8080", "gateway URL")
	var sf storeFlags
	sf.register(fs)
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	if err := checkDemoStore(sf); err != nil {
		return err
	}
	gnarklog.Disable() // the patient-side prover would log to stdout
	return demo.Run(ctx, demo.Config{
		Client:          client.New(*base, &http.Client{Timeout: 30 * time.Second}),
		Out:             e.stdout,
		DataDir:         sf.data,
		VerifierKeyPath: filepath.Join(sf.data, checkpointKeyFile+ledger.VerifierKeySuffix),
		RegisterOrg: func(ctx context.Context, dir string, o auth.Org) (jwk.Key, error) {
			return registerDemoOrg(ctx, e, sf, dir, o)
		},
	})
}

// checkDemoStore says before the first step what is missing for the
// demo to work with the gateway's store: its data directory (checkpoint
// verifier key, development IdP), and for a consortium member, whose data
// directory holds no embedded ledger key, the member's CometBFT home.
func checkDemoStore(sf storeFlags) error {
	vkey := filepath.Join(sf.data, checkpointKeyFile+ledger.VerifierKeySuffix)
	if _, err := os.Stat(vkey); err != nil {
		return fmt.Errorf("demo: --data %s is not a gateway's data directory (no checkpoint verifier key %s): pass the data directory of the gateway at --url (for a consortium member also its --comet-home, see deploy/consortium/README.md)", sf.data, vkey)
	}
	if sf.cometHome == "" && sf.db == "" {
		if _, err := os.Stat(filepath.Join(sf.data, gatewayKeyFile)); errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("demo: %s holds no embedded ledger key (%s): for a consortium member pass its CometBFT home too (--comet-home, e.g. testnet/hospital-N/comet; see deploy/consortium/README.md)", sf.data, gatewayKeyFile)
		}
	}
	return nil
}

// registerDemoOrg generates keys for o under dir, registers it on the
// gateway's ledger (as `healthgw org keygen` does: the private JWKs and
// the public JWK Set are written under dir) and returns its private
// signing key. Each run registers organisations of its own (see package
// demo).
func registerDemoOrg(ctx context.Context, e *env, sf storeFlags, dir string, o auth.Org) (key jwk.Key, err error) {
	kg, err := newKeygen(o, dir, "ES256")
	if err != nil {
		return nil, err
	}
	written, err := kg.writeFiles()
	defer func() {
		if err != nil {
			for _, p := range written {
				_ = os.Remove(p)
			}
		}
	}()
	if err != nil {
		return nil, err
	}
	r, err := openRegistrar(ctx, sf)
	if err != nil {
		return nil, err
	}
	_, err = registry.Register(ctx, r.app, r.sync, auth.CheckOrgJWKS, kg.org)
	if cerr := r.close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	return kg.sig, nil
}

// writeFiles writes kg's private JWKs (0600) and public JWK Set (0644),
// never over an existing file, and returns the paths written.
func (kg *keygen) writeFiles() ([]string, error) {
	var written []string
	if err := os.MkdirAll(filepath.Dir(kg.sigPath), 0o700); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		path string
		key  jwk.Key
	}{{kg.sigPath, kg.sig}, {kg.encPath, kg.enc}} {
		if err := auth.WritePrivateKey(f.path, f.key); err != nil {
			return written, err
		}
		written = append(written, f.path)
	}
	f, err := os.OpenFile(kg.pubPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return written, err
	}
	written = append(written, kg.pubPath)
	_, werr := f.Write(append(kg.public, '\n'))
	return written, errors.Join(werr, f.Close())
}
