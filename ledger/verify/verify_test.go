package verify_test

import (
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"gorm.io/gorm"

	"github.com/healthgw/healthgw/database"
	"github.com/healthgw/healthgw/database/databasetest"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/ledger/gormlog"
	"github.com/healthgw/healthgw/ledger/ledgertest"
	"github.com/healthgw/healthgw/ledger/tiles"
	"github.com/healthgw/healthgw/ledger/verify"
)

const origin = "healthgw.test/ledger"

type fixture struct {
	store  *gormlog.Log
	log    *ledger.Node
	id     ledger.Identity
	signer note.Signer
	v      note.Verifier
	url    string
}

func checkpointKeys(tb testing.TB) (note.Signer, note.Verifier) {
	tb.Helper()
	skey, vkey, err := ledger.GenerateCheckpointKey(origin)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		tb.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		tb.Fatal(err)
	}
	return s, v
}

// newFixture opens a gateway's embedded log (entry 0 registers the
// gateway) in db with n more entries, served over tlog-tiles.
func newFixture(tb testing.TB, db *gorm.DB, n int) *fixture {
	tb.Helper()
	s, v := checkpointKeys(tb)
	st, err := gormlog.Open(context.Background(), db, gormlog.Options{Signer: s, CheckpointInterval: time.Hour})
	if err != nil {
		tb.Fatal(err)
	}
	id := ledgertest.Identity("gw-a")
	l, err := ledger.OpenNode(context.Background(), st, id)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = l.Close() })
	f := &fixture{store: st, log: l, id: id, signer: s, v: v}
	f.appendN(tb, n)
	mux := http.NewServeMux()
	mux.Handle("/ledger/", tiles.New(l, tiles.Options{Prefix: "/ledger"}))
	srv := httptest.NewServer(mux)
	tb.Cleanup(srv.Close)
	f.url = srv.URL + "/ledger/"
	return f
}

func (f *fixture) appendN(tb testing.TB, n int) {
	tb.Helper()
	size, err := f.log.Size(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 256)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if _, err := f.log.Append(context.Background(), ledgertest.Entry(i)); err != nil {
				tb.Error(err)
			}
		}()
	}
	wg.Wait()
	if _, err := f.store.WaitCheckpoint(context.Background(), size+uint64(n)); err != nil {
		tb.Fatal(err)
	}
}

// keys are the regulator's keys of the fixture's gateway.
func (f *fixture) keys() verify.Keys {
	return verify.Keys{SealKey: f.id.SealKey, Pseudonyms: f.id.Pseudonyms}
}

func TestVerify(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, 0)
		ctx := t.Context()
		first, err := f.log.Checkpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{0, 1, 255, 3} {
			if n > 0 {
				f.appendN(t, n)
			}
			size, _ := f.log.Size(ctx)
			var calls int
			var last uint64
			o := verify.Options{Verifier: f.v, Origin: origin, Trusted: first, Progress: func(done, total uint64) {
				calls++
				if done < last || done > total {
					t.Errorf("progress %d/%d after %d", done, total, last)
				}
				last = done
			}}
			res, err := verify.Remote(ctx, f.url, nil, o)
			if err != nil {
				t.Fatalf("Remote at size %d: %v", size, err)
			}
			if res.Entries != size || res.Checkpoint.Size != size || !res.Signed || res.Envelopes {
				t.Errorf("Remote: %+v, want %d entries, tree only", res, size)
			}
			if size > 0 && (calls == 0 || last != size) {
				t.Errorf("progress reported %d calls ending at %d", calls, last)
			}
			last = 0
			res, err = verify.Local(ctx, f.store, o)
			if err != nil {
				t.Fatalf("Local at size %d: %v", size, err)
			}
			if res.Entries != size || res.Checkpoints == 0 {
				t.Errorf("Local: %+v, want %d entries", res, size)
			}
			// The regulator's audit: every envelope, every body.
			o.Envelopes, o.Keys = true, f.keys()
			last = 0
			res, err = verify.Local(ctx, f.store, o)
			if err != nil {
				t.Fatalf("Local with envelopes at size %d: %v", size, err)
			}
			if !res.Envelopes || res.EntrySignatures != size || res.Opened != size || res.Unopened != 0 {
				t.Errorf("Local with envelopes: %+v, want all %d entries signed and opened", res, size)
			}
			patients := uint64(0) // every ledgertest.Entry names a patient
			for typ, c := range res.Types {
				if typ != ledger.TypeGatewayRegistered {
					patients += c
				}
			}
			if res.Subjects != patients {
				t.Errorf("Local with envelopes: %d subjects checked, want %d", res.Subjects, patients)
			}
		}
		var total uint64
		res, _ := verify.Local(ctx, f.store, verify.Options{})
		for _, c := range res.Types {
			total += c
		}
		if total != res.Entries || res.Signed {
			t.Errorf("Local without a key: types sum to %d of %d, signed %v", total, res.Entries, res.Signed)
		}
		// Without the sealing key: signatures and authorship of every
		// entry, the bodies of the registry entries (in clear) only.
		res, err = verify.Local(ctx, f.store, verify.Options{Verifier: f.v, Envelopes: true})
		if err != nil {
			t.Fatal(err)
		}
		if res.EntrySignatures != res.Entries || res.Opened != 1 || res.Unopened != res.Entries-1 || res.Subjects != 0 {
			t.Errorf("Local with envelopes, no keys: %+v; want 1 opened (the gateway's registration), %d unopened", res, res.Entries-1)
		}
	})
}

func TestVerifyErrors(t *testing.T) {
	f := newFixture(t, databasetest.SQLite(t), 10)
	ctx := t.Context()
	if _, err := verify.Remote(ctx, f.url, nil, verify.Options{}); err == nil {
		t.Errorf("Remote without a verifier succeeded")
	}
	if _, err := verify.Remote(ctx, f.url, nil, verify.Options{Verifier: f.v, Envelopes: true}); err == nil {
		t.Errorf("Remote with envelopes but no bodies succeeded")
	}
	_, otherV := checkpointKeys(t)
	var fl *verify.Failure
	_, err := verify.Remote(ctx, f.url, nil, verify.Options{Verifier: otherV})
	if !errors.As(err, &fl) || fl.Kind != verify.KindSignature {
		t.Errorf("Remote with another key: %v, want a signature failure", err)
	}
	_, err = verify.Local(ctx, f.store, verify.Options{Verifier: f.v, Origin: "other.example"})
	if !errors.As(err, &fl) || fl.Kind != verify.KindSignature || !errors.Is(err, ledger.ErrWrongOrigin) {
		t.Errorf("Local with another origin: %v, want a signature failure", err)
	}
	// A server that is down is an error, not a verification failure.
	_, err = verify.Remote(ctx, "http://127.0.0.1:1/ledger/", nil, verify.Options{Verifier: f.v})
	if err == nil || errors.As(err, &fl) {
		t.Errorf("Remote against nothing: %v, want a plain error", err)
	}
}

// memFixture is a log in a ledgertest.MemStore written by gateway A (and,
// with a genesis, B), for tampering with envelopes.
type memFixture struct {
	store   *ledgertest.MemStore
	a, b    ledger.Identity
	na      *ledger.Node
	genesis map[string]ledger.GatewayKeys
	v       note.Verifier
}

func newMemFixture(t *testing.T, twoGateways bool) *memFixture {
	t.Helper()
	s, v := checkpointKeys(t)
	f := &memFixture{a: ledgertest.Identity("gw-a"), b: ledgertest.Identity("gw-b"), v: v}
	f.store = &ledgertest.MemStore{Signer: s}
	if twoGateways {
		f.genesis = map[string]ledger.GatewayKeys{}
		for _, id := range []ledger.Identity{f.a, f.b} {
			f.genesis[id.Gateway] = ledger.GatewayKeys{Public: id.NodeKey.Public().(ed25519.PublicKey), Seal: id.SealKey.PublicKey(), BaseURL: id.BaseURL}
		}
		f.store.Genesis = f.genesis
	}
	var err error
	if f.na, err = ledger.OpenNode(t.Context(), f.store, f.a); err != nil {
		t.Fatal(err)
	}
	if _, err := f.na.Append(t.Context(), ledgertest.OrgEntry(ledgertest.Org)); err != nil {
		t.Fatal(err)
	}
	for i := range 8 {
		if _, err := f.na.Append(t.Context(), ledgertest.Entry(i)); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// forge appends env under a leaf the store would make, with its hashes:
// what a database writer without the node key can do.
func (f *memFixture) forge(t *testing.T, env ledger.Envelope) uint64 {
	t.Helper()
	leaf, err := ledger.NewLeafFor(env.Header, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	i, err := f.store.AppendRaw(leaf, env)
	if err != nil {
		t.Fatal(err)
	}
	return i
}

func (f *memFixture) env(t *testing.T, i uint64) ledger.Envelope {
	t.Helper()
	envs, err := f.store.Envelopes(t.Context(), i, i+1)
	if err != nil {
		t.Fatal(err)
	}
	return envs[0]
}

func (f *memFixture) verify(t *testing.T, keys bool) (*verify.Result, error) {
	t.Helper()
	f.store.Publish()
	o := verify.Options{Verifier: f.v, Envelopes: true, Genesis: f.genesis}
	if keys {
		o.Keys = verify.Keys{SealKey: f.a.SealKey, Pseudonyms: f.a.Pseudonyms}
	}
	return verify.Local(t.Context(), f.store, o)
}

// TestVerifyEntries tampers with entries in ways the tree cannot show
// (the forger recomputes every hash; the checkpoint is then signed over
// the forgery, as by a gateway that does not check): the regulator's
// audit names the first bad entry and what is wrong, the public one
// passes.
func TestVerifyEntries(t *testing.T) {
	tests := []struct {
		name  string
		two   bool // two genesis gateways
		keys  bool // only detected when the body is opened
		forge func(t *testing.T, f *memFixture) uint64
		kind  verify.Kind
		err   error
	}{
		{
			name: "forged entry appended with recomputed hashes (bad signature)",
			forge: func(t *testing.T, f *memFixture) uint64 {
				forger := ledgertest.Identity(f.a.Gateway) // A's ID, another key
				env, err := ledgertest.SignEnvelope(forger, ledgertest.Entry(100), f.a.SealKey.PublicKey())
				if err != nil {
					t.Fatal(err)
				}
				return f.forge(t, env)
			},
			kind: verify.KindEntrySignature, err: ledger.ErrBadEntrySignature,
		},
		{
			name: "entry by a gateway that is not registered",
			forge: func(t *testing.T, f *memFixture) uint64 {
				env, err := ledgertest.SignEnvelope(f.b, ledgertest.Entry(2))
				if err != nil {
					t.Fatal(err)
				}
				return f.forge(t, env)
			},
			kind: verify.KindAuthorship, err: ledger.ErrAuthorship,
		},
		{
			name: "record for an org by a gateway that is not its home",
			two:  true,
			forge: func(t *testing.T, f *memFixture) uint64 {
				env, err := ledgertest.SignEnvelope(f.b, ledgertest.Entry(2)) // org-a's record, by B
				if err != nil {
					t.Fatal(err)
				}
				return f.forge(t, env)
			},
			kind: verify.KindAuthorship, err: ledger.ErrAuthorship,
		},
		{
			name: "org registered again by another gateway",
			two:  true,
			forge: func(t *testing.T, f *memFixture) uint64 {
				env, err := ledgertest.SignEnvelope(f.b, ledgertest.OrgEntry(ledgertest.Org))
				if err != nil {
					t.Fatal(err)
				}
				return f.forge(t, env)
			},
			kind: verify.KindAuthorship, err: ledger.ErrAuthorship,
		},
		{
			name: "issuer key ID of another issuer",
			two:  true,
			forge: func(t *testing.T, f *memFixture) uint64 {
				if _, err := f.na.Append(t.Context(), issuerEntry(t, ledgertest.Org)); err != nil {
					t.Fatal(err)
				}
				nb, err := ledger.OpenNode(t.Context(), f.store, f.b)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := nb.Append(t.Context(), ledgertest.OrgEntry("org-b")); err != nil {
					t.Fatal(err)
				}
				e := issuerEntry(t, "org-b") // the same key, for org-b
				if _, err := nb.Append(t.Context(), e); !errors.Is(err, ledger.ErrAuthorship) {
					t.Fatalf("node B appended an issuer key ID already registered: %v", err)
				}
				env, err := ledgertest.SignEnvelope(f.b, e)
				if err != nil {
					t.Fatal(err)
				}
				return f.forge(t, env)
			},
			kind: verify.KindAuthorship, err: ledger.ErrAuthorship,
		},
		{
			name: "key rotation by the org's home gateway without the org's signature",
			forge: func(t *testing.T, f *memFixture) uint64 {
				_, set := ledgertest.OrgKey("k1")
				reg, err := f.na.Append(t.Context(), ledgertest.KeyedOrgEntry("org-k", set))
				if err != nil {
					t.Fatal(err)
				}
				_, set2 := ledgertest.OrgKey("k2")
				env := clearEnvelope(t, f.a, ledgertest.RotationEntry("org-k", set2, reg, nil))
				return f.forge(t, env)
			},
			kind: verify.KindAuthorship, err: ledger.ErrRotationSignature,
		},
		{
			name: "key rotation replayed",
			forge: func(t *testing.T, f *memFixture) uint64 {
				k1, set := ledgertest.OrgKey("k1")
				reg, err := f.na.Append(t.Context(), ledgertest.KeyedOrgEntry("org-k", set))
				if err != nil {
					t.Fatal(err)
				}
				_, set2 := ledgertest.OrgKey("k2")
				rot := ledgertest.RotationEntry("org-k", set2, reg, k1)
				if _, err := f.na.Append(t.Context(), rot); err != nil {
					t.Fatal(err)
				}
				env := clearEnvelope(t, f.a, rot)
				return f.forge(t, env)
			},
			kind: verify.KindAuthorship, err: ledger.ErrRotationSignature,
		},
		{
			name: "header swapped under an existing leaf",
			forge: func(t *testing.T, f *memFixture) uint64 {
				f.store.Tamper(4, f.env(t, 5))
				return 4
			},
			kind: verify.KindEnvelope, err: ledger.ErrSealMismatch,
		},
		{
			name: "gateway registration replaced under its leaf",
			forge: func(t *testing.T, f *memFixture) uint64 {
				env, err := ledgertest.RegistrationEnvelope(ledgertest.Identity(f.a.Gateway))
				if err != nil {
					t.Fatal(err)
				}
				f.store.Tamper(0, env)
				return 0
			},
			kind: verify.KindEnvelope, err: ledger.ErrSealMismatch,
		},
		{
			name: "sealed opening of another entry",
			forge: func(t *testing.T, f *memFixture) uint64 {
				e := f.env(t, 3)
				e.Sealed = f.env(t, 7).Sealed
				f.store.Tamper(3, e)
				return 3
			},
			kind: verify.KindEnvelope, err: ledger.ErrCommitmentMismatch, // bound to another commitment
		},
		{
			name: "opening resealed naming another patient",
			keys: true,
			forge: func(t *testing.T, f *memFixture) uint64 {
				e := f.env(t, 6)
				o, err := ledger.OpenSealed(e.Sealed, f.a.SealKey)
				if err != nil {
					t.Fatal(err)
				}
				o.Subject = ledgertest.Pseudonym(9)
				h, _ := ledger.DecodeHeader(e.Header)
				if e.Sealed, err = ledger.SealOpening(o, h, []*ecdh.PublicKey{f.a.SealKey.PublicKey()}); err != nil {
					t.Fatal(err)
				}
				f.store.Tamper(6, e)
				return 6
			},
			kind: verify.KindBody, err: ledger.ErrSubjectMismatch,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newMemFixture(t, tc.two)
			if _, err := f.verify(t, true); err != nil {
				t.Fatalf("before the forgery: %v", err)
			}
			index := tc.forge(t, f)
			// One more genuine entry after it: the failure must be the
			// forged one's, not the tail's.
			if _, err := f.na.Append(t.Context(), ledgertest.Entry(3)); err != nil && !errors.Is(err, ledger.ErrAuthorship) {
				var ve *ledger.VerifyError
				if !errors.As(err, &ve) {
					t.Fatalf("append after the forgery: %v", err)
				}
			}
			f.store.Publish()
			res, err := verify.Local(t.Context(), f.store, verify.Options{Verifier: f.v})
			if err != nil {
				t.Fatalf("the public (tree) audit fails: %v; the forgery is below the tree", err)
			}
			if res.Envelopes {
				t.Errorf("the tree audit says it checked envelopes")
			}
			_, err = f.verify(t, true)
			var fl *verify.Failure
			if !errors.As(err, &fl) || fl.Kind != tc.kind || fl.Index != int64(index) || !errors.Is(err, tc.err) {
				t.Fatalf("regulator's audit = %v, want %s at %d (%v)", err, tc.kind, index, tc.err)
			}
			_, err = f.verify(t, false)
			if tc.keys {
				if err != nil && !(errors.As(err, &fl) && fl.Index > int64(index)) {
					t.Errorf("without keys (the body is not opened): %v, want no failure at %d", err, index)
				}
			} else if !errors.As(err, &fl) || fl.Kind != tc.kind || fl.Index != int64(index) {
				t.Errorf("without keys: %v, want %s at %d", err, tc.kind, index)
			}
		})
	}
}

// clearEnvelope signs registry entry e as the gateway of id, whatever the
// registry says: what its node key can sign.
func clearEnvelope(t *testing.T, id ledger.Identity, e ledger.Entry) ledger.Envelope {
	t.Helper()
	s, err := ledger.NewSigner(id.Gateway, id.NodeKey)
	if err != nil {
		t.Fatal(err)
	}
	env, err := ledger.ClearEnvelope(s, e, ledger.GatewayHome{Gateway: id.Gateway, BaseURL: id.BaseURL})
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// issuerEntry is an issuer.registered of org with a fixed key.
func issuerEntry(t *testing.T, org string) ledger.Entry {
	t.Helper()
	pub := "5a8b1c2d3e4f5061728394a5b6c7d8e9f00112233445566778899aabbccddeef"
	id, err := ledger.IssuerKeyID(pub)
	if err != nil {
		t.Fatal(err)
	}
	e, err := ledger.NewEntry(org, &ledger.IssuerRegistered{Issuer: org, KeyID: id, PublicKey: pub})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// BenchmarkVerify measures audit throughput over a 4096-entry log on
// SQLite: Local reads the database (tree only, and the regulator's audit
// with and without the sealing key: signatures, authorship, openings),
// Remote goes through the tiles API.
func BenchmarkVerify(b *testing.B) {
	const n = 1 << 12
	db, err := database.Open(context.Background(), filepath.Join(b.TempDir(), "verify.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { database.Close(db) })
	f := newFixture(b, db, n-1)
	for _, mode := range []string{"local", "local-envelopes", "local-envelopes-keys", "remote"} {
		b.Run(mode, func(b *testing.B) {
			o := verify.Options{Verifier: f.v}
			switch mode {
			case "local-envelopes":
				o.Envelopes = true
			case "local-envelopes-keys":
				o.Envelopes, o.Keys = true, f.keys()
			}
			for b.Loop() {
				var err error
				if mode == "remote" {
					_, err = verify.Remote(context.Background(), f.url, nil, o)
				} else {
					_, err = verify.Local(context.Background(), f.store, o)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
			b.ReportMetric(b.Elapsed().Seconds()*1e6/(float64(n)*float64(b.N)), "µs/entry")
		})
	}
}

// regulatorAPI serves GET /v1/ledger/entries/{i} as the gateway's API
// does for a regulator: the receipt with the leaf, the header and the
// opening (without its subject), base64 as Go encodes []byte. edit, if
// not nil, changes what is served.
func regulatorAPI(t *testing.T, f *fixture, token string, edit func(i uint64, header, opening []byte) ([]byte, []byte)) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/ledger/", tiles.New(f.log, tiles.Options{Prefix: "/ledger"}))
	mux.HandleFunc("GET /v1/ledger/entries/{index}", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		i, err := strconv.ParseUint(r.PathValue("index"), 10, 64)
		if err != nil {
			http.Error(w, "bad index", http.StatusBadRequest)
			return
		}
		rc, err := ledger.ProveEntry(r.Context(), f.log, i, 0)
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		h, o := rc.Header, rc.Opening
		if edit != nil {
			h, o = edit(i, h, o)
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"index": rc.Index, "tree_size": rc.TreeSize, "entry": json.RawMessage(rc.Entry),
			"header": h, "opening": o, "checkpoint": string(rc.Checkpoint),
		})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestRemoteBodies: the regulator's audit over the API (--url with a
// token) checks every body the API serves against the public tree.
func TestRemoteBodies(t *testing.T) {
	f := newFixture(t, databasetest.SQLite(t), 40)
	ctx := t.Context()
	size, _ := f.log.Size(ctx)
	const token = "regulator-token"
	base := regulatorAPI(t, f, token, nil)
	o := verify.Options{Verifier: f.v, Envelopes: true, Bodies: &verify.APIBodies{Base: base, Token: token}}
	res, err := verify.Remote(ctx, base+"/ledger/", nil, o)
	if err != nil {
		t.Fatalf("Remote with bodies: %v", err)
	}
	if res.Entries != size || res.EntrySignatures != size || res.Opened != size || res.Subjects != 0 {
		t.Errorf("Remote with bodies: %+v, want %d entries signed and opened", res, size)
	}

	// A wrong token could not check: an error, not a failure.
	bad := o
	bad.Bodies = &verify.APIBodies{Base: base, Token: "nope"}
	var fl *verify.Failure
	if _, err := verify.Remote(ctx, base+"/ledger/", nil, bad); err == nil || errors.As(err, &fl) {
		t.Errorf("Remote with a bad token: %v, want a plain error", err)
	}

	for _, tc := range []struct {
		name string
		edit func(i uint64, h, o []byte) ([]byte, []byte)
		kind verify.Kind
	}{
		{"opening of another entry served", func(i uint64, h, o []byte) ([]byte, []byte) {
			if i == 17 {
				rc, _ := ledger.ProveEntry(ctx, f.log, 18, 0)
				return h, rc.Opening
			}
			return h, o
		}, verify.KindBody},
		{"header of another entry served", func(i uint64, h, o []byte) ([]byte, []byte) {
			if i == 17 {
				rc, _ := ledger.ProveEntry(ctx, f.log, 18, 0)
				return rc.Header, rc.Opening
			}
			return h, o
		}, verify.KindEnvelope},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := regulatorAPI(t, f, token, tc.edit)
			o := verify.Options{Verifier: f.v, Envelopes: true, Bodies: &verify.APIBodies{Base: base, Token: token}}
			_, err := verify.Remote(ctx, base+"/ledger/", nil, o)
			if !errors.As(err, &fl) || fl.Kind != tc.kind || fl.Index != 17 {
				t.Fatalf("Remote = %v, want %s at 17", err, tc.kind)
			}
		})
	}
}
