package eligibility_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/healthgw/healthgw/circuits"
	"github.com/healthgw/healthgw/circuits/eligibility"
	"github.com/healthgw/healthgw/ledger"
)

// projector is a Syncer that applies the log's registrations to a
// memStore, as zkstore does.
type projector struct {
	log   *fakeLog
	store *memStore
	next  int
}

func (p *projector) Sync(ctx context.Context, _ uint64) error { return p.SyncAll(ctx) }
func (p *projector) SyncAll(context.Context) error {
	p.log.mu.Lock()
	defer p.log.mu.Unlock()
	p.store.mu.Lock()
	defer p.store.mu.Unlock()
	for ; p.next < len(p.log.entries); p.next++ {
		switch b := p.log.entries[p.next].Body.(type) {
		case *ledger.IssuerRegistered:
			p.store.issuers[b.KeyID] = eligibility.Issuer{Org: b.Issuer, KeyID: b.KeyID, PublicKey: b.PublicKey, LedgerIndex: uint64(p.next)}
		case *ledger.CircuitRegistered:
			p.store.circuits = append(p.store.circuits, eligibility.Circuit{Statement: b.Statement, Version: b.Version, VKHash: b.VKHash, Setup: b.Setup, LedgerIndex: uint64(p.next)})
		}
	}
	return nil
}

func count(l *fakeLog, typ ledger.Type) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, e := range l.entries {
		if e.Type == typ {
			n++
		}
	}
	return n
}

func TestIssuerKeys(t *testing.T) {
	log, store := &fakeLog{}, newMemStore()
	sync := &projector{log: log, store: store}
	dir := filepath.Join(t.TempDir(), "issuers")
	keys := eligibility.NewIssuerKeys(dir, log, sync, store)
	k1, err := keys.Key(t.Context(), "hosp-a")
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "hosp-a.pem"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v; want mode 0600", fi, err)
	}
	// Another process over the same directory gets the same key and
	// registers nothing new.
	k2, err := eligibility.NewIssuerKeys(dir, log, sync, store).Key(t.Context(), "hosp-a")
	if err != nil {
		t.Fatal(err)
	}
	if !k1.Public().Equal(k2.Public()) {
		t.Error("the key changed between loads")
	}
	if n := count(log, ledger.TypeIssuerRegistered); n != 1 {
		t.Errorf("%d issuer.registered entries, want 1", n)
	}
	iss, err := store.Issuer(t.Context(), k1.Public().ID())
	if err != nil || iss.Org != "hosp-a" || iss.PublicKey != k1.Public().String() {
		t.Errorf("registered issuer %+v, %v", iss, err)
	}
	for _, org := range []string{"", "../etc", "Hosp-A", "a"} {
		if _, err := keys.Key(t.Context(), org); err == nil {
			t.Errorf("Key(%q) succeeded", org)
		}
	}
	// A failing log registers nothing and reports it.
	boom := errors.New("ledger unavailable")
	log.fail = boom
	if _, err := keys.Key(t.Context(), "hosp-b"); !errors.Is(err, boom) {
		t.Errorf("Key with a failing log: %v, want %v", err, boom)
	}
}

func TestRegisterCircuits(t *testing.T) {
	log, store := &fakeLog{}, newMemStore()
	sync := &projector{log: log, store: store}
	h := func(c string) string { return strings.Repeat(c, 64) } // verifying-key hashes
	infos := []circuits.CircuitInfo{{Statement: circuits.Age, Version: 1, VKHash: h("1"), Setup: "dev"}, {Statement: circuits.Range, Version: 1, VKHash: h("2"), Setup: "dev"}}
	for range 2 {
		if err := eligibility.RegisterCircuits(t.Context(), log, sync, store, infos); err != nil {
			t.Fatal(err)
		}
	}
	if n := count(log, ledger.TypeCircuitRegistered); n != 2 {
		t.Errorf("%d circuit.registered after registering twice, want 2", n)
	}
	infos[0].VKHash, infos[0].Setup = h("3"), "ceremony" // a new key for age
	if err := eligibility.RegisterCircuits(t.Context(), log, sync, store, infos); err != nil {
		t.Fatal(err)
	}
	if n := count(log, ledger.TypeCircuitRegistered); n != 3 {
		t.Errorf("%d circuit.registered after a new key, want 3", n)
	}
}

func TestKeyDirNotReady(t *testing.T) {
	log, store := &fakeLog{}, newMemStore()
	k := eligibility.NewKeyDir(filepath.Join(t.TempDir(), "none"), log, &projector{log: log, store: store}, store, nil)
	if _, err := k.Verifier(t.Context()); !errors.Is(err, eligibility.ErrNotReady) {
		t.Errorf("Verifier without keys: %v, want ErrNotReady", err)
	}
	if len(log.entries) != 0 {
		t.Error("a missing key directory registered circuits")
	}
}
