package auth_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/healthgw/healthgw/auth"
)

func TestParseSMARTScope(t *testing.T) {
	tests := []struct {
		in   string
		want auth.SMARTScope
		ok   bool
	}{
		{"system/Observation.rs", auth.SMARTScope{Resource: "Observation", Read: true}, true},
		{"system/Observation.r", auth.SMARTScope{Resource: "Observation", Read: true}, true},
		{"system/Observation.s", auth.SMARTScope{Resource: "Observation", Read: true}, true},
		{"system/*.rs", auth.SMARTScope{Resource: "*", Read: true}, true},
		{"system/*.cruds", auth.SMARTScope{Resource: "*", Read: true, Write: true}, true},
		{"system/Condition.c", auth.SMARTScope{Resource: "Condition", Write: true}, true},
		{"system/Patient.read", auth.SMARTScope{Resource: "Patient", Read: true}, true},
		{"system/Patient.write", auth.SMARTScope{Resource: "Patient", Write: true}, true},
		{"system/*.*", auth.SMARTScope{Resource: "*", Read: true, Write: true}, true},
		{"system/Consent.rs", auth.SMARTScope{Resource: "Consent", Read: true}, true},
		{"system/AuditEvent.read", auth.SMARTScope{Resource: "AuditEvent", Read: true}, true},
		{"system/Observation.sr", auth.SMARTScope{}, false},   // out of order
		{"system/Observation.rrs", auth.SMARTScope{}, false},  // repeated
		{"system/Observation.x", auth.SMARTScope{}, false},    // unknown permission
		{"system/Observation.", auth.SMARTScope{}, false},     // none
		{"system/observation.rs", auth.SMARTScope{}, false},   // not a type name
		{"patient/Observation.rs", auth.SMARTScope{}, false},  // no patient context
		{"user/*.rs", auth.SMARTScope{}, false},               // no user context
		{"system/Consent.c", auth.SMARTScope{}, false},        // patients grant consent
		{"system/AuditEvent.cruds", auth.SMARTScope{}, false}, // the ledger writes audit events
		{"system/Observation.rs?category=laboratory", auth.SMARTScope{}, false},
		{"system/records.read", auth.SMARTScope{}, false}, // a gateway scope, not a SMART one
	}
	for _, tt := range tests {
		got, ok := auth.ParseSMARTScope(tt.in)
		if ok != tt.ok || got != tt.want {
			t.Errorf("ParseSMARTScope(%q) = %+v, %v; want %+v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// TestSMARTScopeGrants: SMART scopes requested at the token endpoint are
// granted against the org's registered scopes and become principals that
// read exactly what they cover.
func TestSMARTScopeGrants(t *testing.T) {
	f := newFixture(t)
	type want struct {
		scope      string // granted scope string
		readObs    bool
		readCond   bool
		writeObs   bool
		hasRecords bool // unrestricted system/records.read
	}
	tests := []struct {
		name     string
		org      func() string
		scope    string
		wantCode string
		want     want
	}{
		{name: "type-restricted read", scope: "system/Observation.rs",
			want: want{scope: "system/Observation.rs", readObs: true}},
		{name: "two types, v1 and v2 syntax", scope: "system/Observation.read system/Condition.rs",
			want: want{scope: "system/Observation.read system/Condition.rs", readObs: true, readCond: true}},
		{name: "type-restricted write", scope: "system/Observation.c",
			want: want{scope: "system/Observation.c", writeObs: true}},
		{name: "wildcard read (hospital)", scope: "system/*.rs",
			want: want{scope: "system/*.rs system/records.read system/consents.read", readObs: true, readCond: true, hasRecords: true}},
		{name: "wildcard everything (hospital)", scope: "system/*.cruds",
			want: want{scope: "system/*.cruds system/records.read system/consents.read system/records.write", readObs: true, readCond: true, writeObs: true, hasRecords: true}},
		{name: "Consent read", scope: "system/Consent.rs",
			want: want{scope: "system/Consent.rs system/consents.read"}},
		{name: "alongside a gateway scope", scope: "system/records.write system/Observation.rs",
			want: want{scope: "system/records.write system/Observation.rs", readObs: true, writeObs: true}},
		{name: "regulator wildcard read", org: func() string { return "reg-e" }, scope: "system/*.rs",
			want: want{scope: "system/*.rs audit.read"}},
		{name: "regulator AuditEvent read", org: func() string { return "reg-e" }, scope: "system/AuditEvent.rs",
			want: want{scope: "system/AuditEvent.rs audit.read"}},
		{name: "regulator reading records", org: func() string { return "reg-e" }, scope: "system/Observation.rs", wantCode: auth.CodeInvalidScope},
		{name: "regulator writing", org: func() string { return "reg-e" }, scope: "system/*.c", wantCode: auth.CodeInvalidScope},
		{name: "verifier wildcard read", org: func() string { return "verif-d" }, scope: "system/*.rs", wantCode: auth.CodeInvalidScope},
		{name: "patient context", scope: "patient/Observation.rs", wantCode: auth.CodeInvalidScope},
		{name: "consent write", scope: "system/Consent.cud", wantCode: auth.CodeInvalidScope},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := f.world(t, nil)
			o := f.a
			if tt.org != nil {
				switch tt.org() {
				case "reg-e":
					o = f.reg
				case "verif-d":
					o = f.d
				}
			}
			req := assertionRequest(o.Assertion(t, tokenURL, w.clock.Now()))
			req.Scope = tt.scope
			at, err := w.x.Exchange(t.Context(), req)
			if got := oauthCode(t, err); got != tt.wantCode {
				t.Fatalf("Exchange(%q): code %q, want %q (%v)", tt.scope, got, tt.wantCode, err)
			}
			if err != nil {
				return
			}
			p, err := w.authn.Authenticate(t.Context(), at.Token)
			if err != nil {
				t.Fatalf("Authenticate: %v", err)
			}
			got := want{
				scope:      at.Scope,
				readObs:    p.MayReadResource("Observation"),
				readCond:   p.MayReadResource("Condition"),
				writeObs:   p.MayWriteResource("Observation"),
				hasRecords: p.HasScope(auth.ScopeRecordsRead),
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("grant of %q (-want +got):\n%s", tt.scope, diff)
			}
		})
	}
}

// FuzzParseSMARTScope: any string parses or not without panicking, and
// what parses is a system scope reading or writing something.
func FuzzParseSMARTScope(f *testing.F) {
	for _, s := range []string{"system/Observation.rs", "system/*.cruds", "system/Patient.read", "patient/*.rs", "system/Consent.c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sc, ok := auth.ParseSMARTScope(s)
		if !ok {
			return
		}
		if sc.Resource == "" || (!sc.Read && !sc.Write) {
			t.Fatalf("ParseSMARTScope(%q) = %+v", s, sc)
		}
	})
}
