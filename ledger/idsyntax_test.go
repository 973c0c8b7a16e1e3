package ledger

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// TestIDSyntaxMatchesPattern: each byte-by-byte syntax accepts exactly
// what its regular expression accepts, on edge cases (lengths at and
// around the bounds, every byte value in each position class, a trailing
// newline, which Go's $ does not admit) and on random strings drawn from
// the syntax's own alphabet and from bytes around it.
func TestIDSyntaxMatchesPattern(t *testing.T) {
	for name, tc := range map[string]struct {
		syntax  idSyntax
		pattern string
	}{
		"org":        {orgIDPattern, `^[a-z0-9][a-z0-9-]{1,62}$`},
		"gateway":    {gatewayIDPattern, `^[a-z0-9][a-z0-9.-]{1,126}$`},
		"hex digest": {hexDigestPattern, `^[0-9a-f]{64}$`},
		"patient":    {patientRefPattern, `^pr_[0-9a-f]{64}$`},
		"pseudonym":  {pseudonymPattern, `^ps_[0-9a-f]{64}$`},
	} {
		re := regexp.MustCompile(tc.pattern)
		check := func(s string) {
			t.Helper()
			if got, want := tc.syntax.MatchString(s), re.MatchString(s); got != want {
				t.Errorf("%s: %q: %v, the pattern says %v", name, s, got, want)
			}
		}
		accepted := 0
		// Lengths around the bounds, from a valid filler.
		valid := tc.syntax.prefix + "a" + strings.Repeat("0", tc.syntax.maxRest)
		for n := 0; n <= len(valid)+2; n++ {
			s := (valid + "00")[:n]
			check(s)
			check(s + "\n")
			if re.MatchString(s) {
				accepted++
			}
		}
		// Every byte value at the first position, in the middle and last.
		base := tc.syntax.prefix + "a" + strings.Repeat("1", tc.syntax.minRest+1)
		if len(base) > len(tc.syntax.prefix)+1+tc.syntax.maxRest {
			base = base[:len(tc.syntax.prefix)+1+tc.syntax.maxRest]
		}
		for c := range 256 {
			for _, at := range []int{0, len(tc.syntax.prefix), len(tc.syntax.prefix) + 1, len(base) - 1} {
				b := []byte(base)
				b[at] = byte(c)
				check(string(b))
			}
		}
		// Random strings over the alphabet and its neighbours.
		r := rand.New(rand.NewPCG(1, uint64(len(name))))
		alphabet := tc.syntax.prefix + "0123456789abcdefghijklmnopqrstuvwxyz-.:_/AZ\x00\xff"
		for range 20000 {
			n := len(tc.syntax.prefix) + r.IntN(tc.syntax.maxRest+4)
			var sb strings.Builder
			if r.IntN(2) == 0 {
				sb.WriteString(tc.syntax.prefix)
			}
			for sb.Len() < n {
				sb.WriteByte(alphabet[r.IntN(len(alphabet))])
			}
			check(sb.String())
			if re.MatchString(sb.String()) {
				accepted++
			}
		}
		if accepted == 0 {
			t.Errorf("%s: no generated input matches: the test exercises only refusals", name)
		}
	}
}
