package auth_test

import (
	"testing"

	"github.com/healthgw/healthgw/auth"
)

func TestMayReadRecords(t *testing.T) {
	for _, tt := range []struct {
		name string
		p    auth.Principal
		want bool
	}{
		{"records.read", auth.Principal{Org: "h", Kind: auth.KindHospital, Scopes: []auth.Scope{auth.ScopeRecordsRead}}, true},
		{"a record type read", auth.Principal{Org: "h", Kind: auth.KindHospital, Scopes: []auth.Scope{"system/Observation.rs"}}, true},
		{"a record type write only", auth.Principal{Org: "h", Kind: auth.KindHospital, Scopes: []auth.Scope{"system/Observation.cud"}}, false},
		{"consents only", auth.Principal{Org: "h", Kind: auth.KindHospital, Scopes: []auth.Scope{"system/Consent.rs", auth.ScopeConsentsRead}}, false},
		{"no scopes", auth.Principal{Org: "h", Kind: auth.KindHospital}, false},
		{"a patient", auth.Principal{Patient: "p", Scopes: []auth.Scope{"system/Observation.rs"}}, false},
	} {
		if got := tt.p.MayReadRecords(); got != tt.want {
			t.Errorf("%s: MayReadRecords() = %v, want %v", tt.name, got, tt.want)
		}
	}
}
