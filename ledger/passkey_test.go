package ledger_test

import (
	"errors"
	"testing"

	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/ledger/ledgertest"
)

// A passkey registration is a patient entry: it round-trips through the
// node (sealed, opened, translated back), and a malformed one is refused
// before anything is appended.
func TestPasskeyRegisteredRoundTrip(t *testing.T) {
	ctx := t.Context()
	m := &ledgertest.MemLog{}
	n := m.Node()
	ps := ledgertest.Pseudonym(1)
	body := &ledger.PasskeyRegistered{Patient: ps, CredentialID: "Y3JlZC0x", PublicKey: "pQECAyYgASFYIA",
		RPID: "localhost", Origin: "http://localhost:8080"}
	e, err := ledger.NewEntry(ledger.PatientOrg(ps), body)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := n.Append(ctx, e)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	got, err := n.Read(ctx, idx, idx+1)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if got[0].Type != ledger.TypePasskeyRegistered || got[0].Org != ledger.PatientOrg(ps) {
		t.Fatalf("read %s org %q", got[0].Type, got[0].Org)
	}
	if b, ok := got[0].Body.(*ledger.PasskeyRegistered); !ok || *b != *body {
		t.Fatalf("read body %#v, want %#v", got[0].Body, body)
	}
	o, err := n.Open(ctx, idx)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	h, err := ledger.DecodeHeader(o.Header)
	if err != nil {
		t.Fatal(err)
	}
	if h.Org != ledger.OrgPatient {
		t.Errorf("header org %q, want %q", h.Org, ledger.OrgPatient)
	}

	size, _ := n.Size(ctx)
	for name, bad := range map[string]ledger.PasskeyRegistered{
		"padded credential": {Patient: ps, CredentialID: "Y3JlZC0x==", PublicKey: "pQEC", RPID: "localhost", Origin: "http://localhost:8080"},
		"no key":            {Patient: ps, CredentialID: "Y3JlZC0x", RPID: "localhost", Origin: "http://localhost:8080"},
		"no rp":             {Patient: ps, CredentialID: "Y3JlZC0x", PublicKey: "pQEC", Origin: "http://localhost:8080"},
		"bad origin":        {Patient: ps, CredentialID: "Y3JlZC0x", PublicKey: "pQEC", RPID: "localhost", Origin: "localhost"},
	} {
		e, _ := ledger.NewEntry(ledger.PatientOrg(ps), &bad)
		if _, err := n.Append(ctx, e); !errors.Is(err, ledger.ErrMalformed) {
			t.Errorf("%s: Append err = %v, want ErrMalformed", name, err)
		}
	}
	if after, _ := n.Size(ctx); after != size {
		t.Errorf("refused appends grew the log from %d to %d", size, after)
	}
}
