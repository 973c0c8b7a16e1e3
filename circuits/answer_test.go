package circuits_test

import (
	"errors"
	"testing"

	"github.com/healthgw/healthgw/circuits"
	"github.com/healthgw/healthgw/circuits/credential"
	"github.com/healthgw/healthgw/circuits/credential/credentialtest"
)

// TestAnswerable: the holder-side check of whether a credential can answer
// a challenge agrees with what the prover would refuse, without the
// holder's secret.
func TestAnswerable(t *testing.T) {
	f := credentialtest.New(t, 7) // born 1990-04-01, HbA1c 7.2, E11.9, valid through 2027-12-31
	ch := func(s circuits.Statement, date string, m map[string]string) circuits.Challenge {
		t.Helper()
		p, err := circuits.ParseParams(s, m)
		if err != nil {
			t.Fatal(err)
		}
		d, err := credential.ParseDay(date)
		if err != nil {
			t.Fatal(err)
		}
		return circuits.Challenge{ID: "c", Statement: s, Params: p, Nonce: []byte("n"), Scope: "v", Verifier: "v", Date: d}
	}
	tampered := *f.Credential
	tampered.Attributes[0]-- // born a day earlier: the issuer's signature no longer covers it
	absent := f.Issue(t, f.Issuer, credential.Attributes{credential.Absent, credential.Absent, credential.Absent, credential.Absent,
		credential.Absent, credential.Absent, credential.Absent, credential.Absent}, credentialtest.Expiry)
	for _, tt := range []struct {
		name string
		cred *credential.Credential
		ch   circuits.Challenge
		want error
	}{
		{"over 18", f.Credential, ch(circuits.Age, "2026-03-01", map[string]string{"attribute": "birth_date", "cutoff": "2008-03-01"}), nil},
		{"born on the cutoff", f.Credential, ch(circuits.Age, "2026-03-01", map[string]string{"attribute": "birth_date", "cutoff": "1990-04-01"}), nil},
		{"born a day after the cutoff", f.Credential, ch(circuits.Age, "2026-03-01", map[string]string{"attribute": "birth_date", "cutoff": "1990-03-31"}), circuits.ErrNotSatisfied},
		{"in range", f.Credential, ch(circuits.Range, "2026-03-01", map[string]string{"attribute": "hba1c", "lo": "6.5", "hi": "14"}), nil},
		{"out of range", f.Credential, ch(circuits.Range, "2026-03-01", map[string]string{"attribute": "hba1c", "lo": "7.3", "hi": "14"}), circuits.ErrNotSatisfied},
		{"member", f.Credential, ch(circuits.Member, "2026-03-01", map[string]string{"attribute": "diagnosis", "set": "E10.9,E11.9"}), nil},
		{"not a member", f.Credential, ch(circuits.Member, "2026-03-01", map[string]string{"attribute": "diagnosis", "set": "E10.9,E13.9"}), circuits.ErrNotSatisfied},
		{"member by root only", f.Credential, ch(circuits.Member, "2026-03-01", map[string]string{"attribute": "diagnosis", "root": "00000000000000000000000000000000000000000000000000000000000000aa"}), circuits.ErrParams},
		{"attribute absent", absent, ch(circuits.Age, "2026-03-01", map[string]string{"attribute": "birth_date", "cutoff": "2008-03-01"}), circuits.ErrNotSatisfied},
		{"expired on the challenge date", f.Credential, ch(circuits.Age, "2028-01-01", map[string]string{"attribute": "birth_date", "cutoff": "2010-01-01"}), credential.ErrExpired},
		{"altered credential", &tampered, ch(circuits.Age, "2026-03-01", map[string]string{"attribute": "birth_date", "cutoff": "2008-03-01"}), credential.ErrSignature},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.ch.Answerable(tt.cred)
			if (tt.want == nil) != (err == nil) || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Errorf("Answerable: %v, want %v", err, tt.want)
			}
		})
	}
}
