package ledger_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/ledger/ledgertest"
)

// TestPreparedIsDecoded: the statement a prepared entry is signed,
// sealed and cached with is the one DecodeStatement reads from its
// bytes, for bodies the fast encoder writes (Prepare does not decode
// them again) and for the others (free text it declines, every other
// type), and the entries append.
func TestPreparedIsDecoded(t *testing.T) {
	ctx := context.Background()
	n, err := ledger.OpenNode(ctx, &ledgertest.MemStore{}, ledgertest.Identity("gw-a"))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	texts := []string{"r1", "a b<c>&d", `quo"te`, `back\slash`, "tab\there", "é", "\u2028", "~!@#$%^*()_+-=[]{}|;':,./?"}
	var entries []ledger.Entry
	for i := range 40 {
		entries = append(entries, ledgertest.Entry(i))
	}
	for i, s := range texts {
		for j, b := range []any{
			&ledger.AccessDecided{Requester: "org-b", RecordID: s, Patient: ledgertest.Pseudonym(i), Category: s,
				Purpose: s, Decision: ledger.DecisionPermit, Reason: ledger.DecisionPermit + "." + s, GrantID: s,
				RequestID: s, ClientRequestID: s},
			&ledger.AccessDecided{Requester: "org-b", RecordID: s, Decision: ledger.DecisionDeny,
				Reason: ledger.ReasonNotFound, RequestID: fmt.Sprintf("req-%d", i)},
			&ledger.RecordRegistered{RecordID: s, Holder: ledgertest.Org, Patient: ledgertest.Pseudonym(i), Category: s,
				ResourceType: s, Commitment: fmt.Sprintf("%064x", i), ContentType: s, Size: int64(i)},
			&ledger.RecordShredded{RecordID: s, Holder: ledgertest.Org, Patient: ledgertest.Pseudonym(i)},
			&ledger.ConsentRevoked{ConsentID: s, Patient: ledgertest.Pseudonym(i)},
		} {
			org := ledgertest.Org
			if cr, ok := b.(*ledger.ConsentRevoked); ok {
				org = ledger.PatientOrg(cr.Patient)
			}
			e, err := ledger.NewEntry(org, b)
			if err != nil {
				t.Fatalf("text %q, body %d: %v", s, j, err)
			}
			entries = append(entries, e)
		}
	}
	for i, e := range entries {
		p, err := n.Prepare(e)
		if err != nil {
			t.Fatalf("entry %d (%s): %v", i, e.Type, err)
		}
		want, err := ledger.DecodeStatement(p.Statement())
		if err != nil {
			t.Fatalf("entry %d (%s): the prepared statement does not decode: %v", i, e.Type, err)
		}
		if got := p.PreparedStatement(); !reflect.DeepEqual(got, want) {
			t.Errorf("entry %d (%s): prepared %+v, decoded %+v", i, e.Type, got, want)
		}
		if _, err := n.AppendPrepared(ctx, p, nil); err != nil {
			t.Fatalf("entry %d (%s): %v", i, e.Type, err)
		}
	}
}
