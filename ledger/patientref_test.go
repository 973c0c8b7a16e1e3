package ledger

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"testing"
)

func TestPatientRefs(t *testing.T) {
	k1, err := PatientKey(testSecret, "patient-1")
	if err != nil {
		t.Fatal(err)
	}
	k2, err := PatientKey(testSecret, "patient-2")
	if err != nil {
		t.Fatal(err)
	}
	s1, s2 := fixedSalt(1), fixedSalt(2)
	r1, r2 := PatientRef(k1, s1), PatientRef(k1, s2)
	if r1 == r2 {
		t.Fatal("one patient has the same reference under two salts")
	}
	for _, r := range []string{r1, r2} {
		if !ValidPatientRef(r) {
			t.Errorf("%q is not a valid reference", r)
		}
	}
	// The key tests both entries…
	if !IsAbout(k1, s1, r1) || !IsAbout(k1, s2, r2) {
		t.Error("the patient's key does not recognise its references")
	}
	// …but not with the wrong salt, and another patient's key tests
	// neither.
	if IsAbout(k1, s2, r1) || IsAbout(k2, s1, r1) || IsAbout(k2, s2, r2) {
		t.Error("a reference tests true for the wrong salt or patient")
	}
	// A key from another gateway's secret does not link them either.
	otherKey, err := PatientKey(bytes.Repeat([]byte{8}, PseudonymKeySize), "patient-1")
	if err != nil {
		t.Fatal(err)
	}
	if IsAbout(otherKey, s1, r1) {
		t.Error("another secret's key tests true")
	}
	// Without the key, the references of one patient look like those of
	// two: they share no prefix beyond the tag, and the v1 pseudonym of
	// the patient appears in neither.
	p, err := NewPseudonymizer(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	ps := p.Pseudonym("patient-1")
	for _, r := range []string{r1, r2} {
		if strings.Contains(r, ps[3:]) || strings.Contains(r, hex.EncodeToString(k1[:])) {
			t.Errorf("reference %q carries the pseudonym or the key", r)
		}
	}
	if common := commonPrefix(r1[3:], r2[3:]); common > 4 {
		t.Errorf("references share %d leading hex digits", common)
	}
	// Malformed references never match.
	for _, r := range []string{"", r1[:len(r1)-1], strings.ToUpper(r1), "ps_" + r1[3:], r1 + "0"} {
		if IsAbout(k1, s1, r) {
			t.Errorf("IsAbout(%q) = true", r)
		}
	}
}

func commonPrefix(a, b string) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

func TestPatientKeyMatchesDesign(t *testing.T) {
	k, err := PatientKey(testSecret, "patient-1")
	if err != nil {
		t.Fatal(err)
	}
	m := hmac.New(sha256.New, testSecret)
	m.Write([]byte("healthgw/patient-key/v2\npatient-1"))
	if !bytes.Equal(k[:], m.Sum(nil)) {
		t.Error("K_p is not HMAC-SHA-256(secret, domain ‖ patient)")
	}
	salt := fixedSalt(4)
	m = hmac.New(sha256.New, k[:])
	m.Write(salt[:])
	if want := "pr_" + hex.EncodeToString(m.Sum(nil)); PatientRef(k, salt) != want {
		t.Errorf("PatientRef = %s, want %s", PatientRef(k, salt), want)
	}
}

func TestPatientKeyRejects(t *testing.T) {
	for _, tc := range []struct {
		secret  []byte
		patient string
	}{
		{testSecret[:31], "p"},
		{nil, "p"},
		{testSecret, ""},
		{testSecret, strings.Repeat("p", 257)},
		{testSecret, "a\nb"}, // a control character: no patient key is a v1 pseudonym
		{testSecret, "a\x00"},
		{testSecret, "\xff"},
	} {
		if _, err := PatientKey(tc.secret, tc.patient); err == nil {
			t.Errorf("PatientKey(%d-byte secret, %q) accepted", len(tc.secret), tc.patient)
		}
	}
}

// TestRefKeyIsPatientKey: RefKey, on its pooled HMAC states, is
// PatientKey under the Pseudonymizer's secret, from many goroutines at
// once, and refuses what PatientKey refuses; PatientRef is "pr_" and the
// hex HMAC-SHA-256 of the salt under the key.
func TestRefKeyIsPatientKey(t *testing.T) {
	secret := bytes.Repeat([]byte{9}, PseudonymKeySize)
	p, err := NewPseudonymizer(secret)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 300 {
				ps := p.Pseudonym(fmt.Sprintf("patient-%d-%d", g, i))
				if i%50 == 0 {
					ps = []string{"", "bad\x00", strings.Repeat("x", 300), "\xff"}[i/50%4]
				}
				got, gerr := p.RefKey(ps)
				want, werr := PatientKey(secret, ps)
				if (gerr == nil) != (werr == nil) || got != want {
					t.Errorf("RefKey(%q) = %x, %v; PatientKey %x, %v", ps, got, gerr, want, werr)
					return
				}
				if gerr != nil {
					continue
				}
				var salt Salt
				salt[0], salt[1] = byte(g), byte(i)
				m := hmac.New(sha256.New, want[:])
				m.Write(salt[:])
				if ref, wantRef := PatientRef(got, salt), "pr_"+hex.EncodeToString(m.Sum(nil)); ref != wantRef || !IsAbout(got, salt, ref) {
					t.Errorf("PatientRef = %s, want %s", ref, wantRef)
					return
				}
			}
		})
	}
	wg.Wait()
}
