package comet

import (
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/healthgw/healthgw/ledger"
)

// Test helpers shared by the package's internal and external tests: they
// build envelopes the way a gateway does (ledger.Signer, SealOpening,
// ClearEnvelope), but without a ledger.Node's authorship check, so that
// tests can submit what a misbehaving member would.

// TestGateway is a genesis gateway as a test drives it: its ID, node key
// and ledger signer.
type TestGateway struct {
	ID     string
	Key    ed25519.PrivateKey
	Signer *ledger.Signer
}

// NewTestGateway returns the test gateway id with key.
func NewTestGateway(t testing.TB, id string, key ed25519.PrivateKey) TestGateway {
	t.Helper()
	s, err := ledger.NewSigner(id, key)
	if err != nil {
		t.Fatal(err)
	}
	return TestGateway{ID: id, Key: key, Signer: s}
}

// GatewayOfHome returns the gateway of a node home (its gateway key).
func GatewayOfHome(t testing.TB, home string) TestGateway {
	t.Helper()
	gk, err := LoadGatewayKey(home + "/" + GatewayKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	return NewTestGateway(t, gk.ID, gk.PrivateKey)
}

// SealedEnvelope returns the envelope of a sealed entry authored by gw for
// org, whose v2 body body(salt) builds (patient references depend on the
// salt), sealed to keys (to a fresh key nobody keeps if none).
func SealedEnvelope(t testing.TB, gw TestGateway, org string, body func(ledger.Salt) any, keys ...*ecdh.PublicKey) ledger.Envelope {
	t.Helper()
	salt, err := ledger.NewSalt()
	if err != nil {
		t.Fatal(err)
	}
	statement, err := gw.Signer.Statement(org, salt, body(salt))
	if err != nil {
		t.Fatal(err)
	}
	h, _, err := gw.Signer.Sign(statement, nil)
	if err != nil {
		t.Fatal(err)
	}
	header, err := ledger.EncodeHeader(h)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) == 0 {
		k, err := ledger.NewSealKey()
		if err != nil {
			t.Fatal(err)
		}
		keys = []*ecdh.PublicKey{k.PublicKey()}
	}
	sealed, err := ledger.SealOpening(ledger.Opening{Statement: statement}, h, keys)
	if err != nil {
		t.Fatal(err)
	}
	return ledger.Envelope{Header: header, Sealed: sealed}
}

// PatientKeyOf is the reference key of a test patient under a fixed
// secret.
func PatientKeyOf(t testing.TB, patient string) ledger.PatientRefKey {
	t.Helper()
	secret := make([]byte, ledger.PseudonymKeySize)
	k, err := ledger.PatientKey(secret, patient)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// ConsentBody returns a consent.granted body builder for consent id.
func ConsentBody(t testing.TB, id string) func(ledger.Salt) any {
	k := PatientKeyOf(t, "patient-"+id)
	return func(salt ledger.Salt) any {
		return &ledger.ConsentGrantedV2{
			ConsentID: id, Patient: ledger.PatientRef(k, salt), Grantee: ledger.Grantee{Org: "hosp-b"},
			Decision: "permit", Actions: []string{"read"}, Purposes: []string{"TREAT"},
			NotBefore: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC),
		}
	}
}

// RecordBody returns a record.registered body builder for a record of
// holder.
func RecordBody(t testing.TB, holder, id string) func(ledger.Salt) any {
	k := PatientKeyOf(t, "patient-"+id)
	return func(salt ledger.Salt) any {
		return &ledger.RecordRegisteredV2{
			RecordID: id, Holder: holder, Patient: ledger.PatientRef(k, salt), Category: "labs",
			Commitment: hex.EncodeToString(make([]byte, 32)),
		}
	}
}

// ConsentEnvelope is a consent.granted (org "patient": any gateway may
// author it) by gw.
func ConsentEnvelope(t testing.TB, gw TestGateway, id string, keys ...*ecdh.PublicKey) ledger.Envelope {
	t.Helper()
	return SealedEnvelope(t, gw, ledger.OrgPatient, ConsentBody(t, id), keys...)
}

// RegistryEnvelope returns the clear envelope of registry entry e (an
// org, issuer, circuit or gateway registration) authored by gw.
func RegistryEnvelope(t testing.TB, gw TestGateway, e ledger.Entry) ledger.Envelope {
	t.Helper()
	env, err := ledger.ClearEnvelope(gw.Signer, e, ledger.GatewayHome{Gateway: gw.ID, BaseURL: "http://" + gw.ID + ".test"})
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// OrgEntry is an org.registered for a hospital id (home: whoever appends
// it).
func OrgEntry(t testing.TB, id string) ledger.Entry {
	t.Helper()
	e, err := ledger.NewEntry(id, &ledger.OrgRegistered{
		ID: id, Name: "Hospital " + id, Kind: "hospital", Scopes: []string{"system/records.read"},
		JWKSURL: "https://" + id + ".example/jwks.json",
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// IssuerEntry is an issuer.registered of org's key pub (32 bytes) with key
// ID keyID ("" for the one the key dictates).
func IssuerEntry(t testing.TB, org string, pub []byte, keyID string) ledger.Entry {
	t.Helper()
	pubHex := hex.EncodeToString(pub)
	if keyID == "" {
		var err error
		if keyID, err = ledger.IssuerKeyID(pubHex); err != nil {
			t.Fatal(err)
		}
	}
	e, err := ledger.NewEntry(org, &ledger.IssuerRegistered{Issuer: org, KeyID: keyID, PublicKey: pubHex})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// GatewayEntry is gw's gateway.registered with sealing key seal.
func GatewayEntry(t testing.TB, gw TestGateway, seal *ecdh.PublicKey) ledger.Entry {
	t.Helper()
	e, err := ledger.NewEntry(ledger.OrgGateway, &ledger.GatewayRegistered{
		ID: gw.ID, PublicKey: ledger.EncodeNodeKey(gw.Signer.Public()), SealKey: ledger.EncodeSealKey(seal),
		BaseURL: "http://" + gw.ID + ".test",
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// RandomKey32 returns 32 random bytes (a stand-in issuer public key: the
// registry checks only its key ID).
func RandomKey32(t testing.TB) []byte {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// RawTx returns a transaction that submitter signs with key around env,
// without SignTx's checks (so the header's author need not be the
// submitter).
func RawTx(t testing.TB, chainID, submitter string, key ed25519.PrivateKey, env ledger.Envelope) []byte {
	t.Helper()
	w := wireTx{Version: txVersion, Gateway: submitter, Nonce: hex.EncodeToString(RandomKey32(t)[:nonceSize]),
		Header: env.Header, Sealed: env.Sealed, Clear: env.Clear}
	msg, err := signedMessage(chainID, w)
	if err != nil {
		t.Fatal(err)
	}
	w.Sig = ed25519.Sign(key, msg)
	tx, err := json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	return tx
}

// CheckRaw runs tx through node l's CheckTx (as a peer's gossip or a
// submission does) and returns the result code and log.
func (l *Log) CheckRaw(ctx context.Context, tx []byte) (uint32, string, error) {
	res, err := l.broadcast(ctx, tx)
	if err != nil {
		return 0, "", fmt.Errorf("broadcast: %w", err)
	}
	return res.Code, res.Log, nil
}

// App returns node l's application (for tests that drive ABCI calls).
func (l *Log) App() *App { return l.app }
