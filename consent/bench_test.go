package consent_test

import (
	"fmt"
	"testing"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/consent"
)

// manyGrants returns n grants of one patient, none of which match readLab
// (they name other hospitals, other categories or other records), so that
// Decide scans them all.
func manyGrants(n int) []consent.Grant {
	grants := make([]consent.Grant, n)
	for i := range grants {
		grants[i] = permitGrant(fmt.Sprintf("g%05d", i), func(g *consent.Grant) {
			switch i % 4 {
			case 0:
				g.Grantee = consent.Grantee{Org: fmt.Sprintf("hospital-%d", i)}
			case 1:
				g.Categories = []string{"imaging", "mental-health"}
			case 2:
				g.RecordIDs = []string{fmt.Sprintf("rec-x%d", i)}
			case 3:
				g.Grantee = consent.Grantee{Kind: auth.KindVerifier}
				g.Effect = consent.Deny
			}
		})
	}
	return grants
}

// BenchmarkDecide measures one decision over 10,000 grants of one patient:
// the matching grant is last, or absent, or a deny at the end.
func BenchmarkDecide(b *testing.B) {
	const n = 10000
	cases := []struct {
		name string
		last *consent.Grant
		want consent.Reason
	}{
		{"permit-last", ptr(permitGrant("match")), consent.ReasonPermitGrant},
		{"no-grant", nil, consent.ReasonDenyNoGrant},
		{"deny-last", ptr(denyGrant("match")), consent.ReasonDenyExplicit},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			grants := manyGrants(n)
			if c.last != nil {
				grants = append(grants, *c.last)
			}
			req, policy := readLab(), consent.DefaultPolicy()
			b.ReportAllocs()
			for b.Loop() {
				if d := consent.Decide(req, grants, t0, policy); d.Reason != c.want {
					b.Fatalf("Decide() reason %q, want %q", d.Reason, c.want)
				}
			}
			b.ReportMetric(float64(len(grants)), "grants")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(grants)), "ns/grant")
		})
	}
}

func ptr[T any](v T) *T { return &v }
