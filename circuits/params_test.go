package circuits_test

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/healthgw/healthgw/circuits"
)

func TestParamsRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		s circuits.Statement
		m map[string]string
	}{
		{circuits.Age, map[string]string{"schema": "healthgw/patient/v1", "attribute": "birth_date", "cutoff": "2008-03-01"}},
		{circuits.Range, map[string]string{"schema": "healthgw/patient/v1", "attribute": "hba1c", "lo": "6.5", "hi": "14"}},
		{circuits.Range, map[string]string{"schema": "healthgw/patient/v1", "attribute": "last_visit", "lo": "2025-01-01", "hi": "2025-12-31"}},
		{circuits.Member, map[string]string{"attribute": "diagnosis", "set": "E11.9,ICD10:E10.9"}},
	} {
		t.Run(string(tc.s), func(t *testing.T) {
			m := tc.m
			if tc.s == circuits.Member {
				// The canonical form adds the schema and the root computed
				// from the set, and sorts and normalises the codes.
				p, err := circuits.ParseParams(tc.s, m)
				if err != nil {
					t.Fatal(err)
				}
				m = p.Map(tc.s)
				if m["set"] != "ICD10:E10.9,ICD10:E11.9" || len(m["root"]) != 64 {
					t.Fatalf("canonical member params %v", m)
				}
			}
			p, err := circuits.ParseParams(tc.s, m)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(m, p.Map(tc.s)); diff != "" {
				t.Errorf("Map(ParseParams(m)) (-m +got):\n%s", diff)
			}
		})
	}
}

func TestParamsErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    circuits.Statement
		m    map[string]string
		want error
	}{
		{"unknown statement", "height", map[string]string{}, circuits.ErrUnknownStatement},
		{"no attribute", circuits.Age, map[string]string{"cutoff": "2008-01-01"}, circuits.ErrParams},
		{"age on a lab value", circuits.Age, map[string]string{"attribute": "hba1c", "cutoff": "2008-01-01"}, circuits.ErrParams},
		{"age without cutoff", circuits.Age, map[string]string{"attribute": "birth_date"}, circuits.ErrParams},
		{"foreign key", circuits.Age, map[string]string{"attribute": "birth_date", "cutoff": "2008-01-01", "lo": "1"}, circuits.ErrParams},
		{"range reversed", circuits.Range, map[string]string{"attribute": "hba1c", "lo": "14", "hi": "6.5"}, circuits.ErrParams},
		{"range too precise", circuits.Range, map[string]string{"attribute": "hba1c", "lo": "6.501", "hi": "14"}, circuits.ErrParams},
		{"member without set or root", circuits.Member, map[string]string{"attribute": "diagnosis"}, circuits.ErrParams},
		{"member root mismatch", circuits.Member, map[string]string{"attribute": "diagnosis", "set": "E11.9", "root": "0000000000000000000000000000000000000000000000000000000000000001"}, circuits.ErrParams},
		{"member bad code", circuits.Member, map[string]string{"attribute": "diagnosis", "set": "E11.9,banana"}, circuits.ErrParams},
		{"unknown schema", circuits.Age, map[string]string{"schema": "x", "attribute": "birth_date", "cutoff": "2008-01-01"}, circuits.ErrParams},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := circuits.ParseParams(tc.s, tc.m); !errors.Is(err, tc.want) {
				t.Fatalf("error = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestParamsEqual(t *testing.T) {
	parse := func(s circuits.Statement, m map[string]string) circuits.Params {
		t.Helper()
		p, err := circuits.ParseParams(s, m)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	withSet := parse(circuits.Member, map[string]string{"attribute": "diagnosis", "set": "E11.9,E10.9,E13.9"})
	rootOnly := parse(circuits.Member, map[string]string{"attribute": "diagnosis", "root": credentialRoot(withSet)})
	otherSet := parse(circuits.Member, map[string]string{"attribute": "diagnosis", "set": "E11.9,E10.9"})
	age := parse(circuits.Age, map[string]string{"attribute": "birth_date", "cutoff": "2008-03-01"})
	laterAge := parse(circuits.Age, map[string]string{"attribute": "birth_date", "cutoff": "2008-03-02"})
	for _, tt := range []struct {
		name string
		s    circuits.Statement
		p, q circuits.Params
		want bool
	}{
		{"a set and its root", circuits.Member, withSet, rootOnly, true},
		{"its root and the set", circuits.Member, rootOnly, withSet, true},
		{"another set", circuits.Member, withSet, otherSet, false},
		{"another set's root", circuits.Member, rootOnly, otherSet, false},
		{"the same cutoff", circuits.Age, age, age, true},
		{"another cutoff", circuits.Age, age, laterAge, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.Equal(tt.s, tt.q); got != tt.want {
				t.Errorf("Equal = %v, want %v", got, tt.want)
			}
		})
	}
}

func credentialRoot(p circuits.Params) string { return p.Map(circuits.Member)["root"] }
