package ledger_test

import (
	"bytes"
	"regexp"
	"testing"

	"github.com/healthgw/healthgw/ledger"
)

// TestForReader: a reader pseudonym is stable for one reader and patient,
// differs between readers, patients and secrets, and is not the ledger
// pseudonym.
func TestForReader(t *testing.T) {
	p, err := ledger.NewPseudonymizer(bytes.Repeat([]byte{1}, ledger.PseudonymKeySize))
	if err != nil {
		t.Fatal(err)
	}
	q, _ := ledger.NewPseudonymizer(bytes.Repeat([]byte{2}, ledger.PseudonymKeySize))
	ps := p.Pseudonym("pat-1")
	a := p.ForReader("hosp-a", ps)
	if !regexp.MustCompile(`^rp_[0-9a-f]{64}$`).MatchString(a) || a != p.ForReader("hosp-a", ps) {
		t.Fatalf("ForReader = %q, not stable or malformed", a)
	}
	for name, other := range map[string]string{
		"another reader":  p.ForReader("hosp-b", ps),
		"another patient": p.ForReader("hosp-a", p.Pseudonym("pat-2")),
		"another secret":  q.ForReader("hosp-a", ps),
		"split shifted":   p.ForReader("hosp-", "a"+ps),
		"the pseudonym":   ps,
	} {
		if other == a {
			t.Errorf("%s gives the same value %q", name, a)
		}
	}
}
