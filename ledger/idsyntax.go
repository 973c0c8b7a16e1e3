package ledger

// idSyntax is one of the ledger's fixed identifier syntaxes, checked byte
// by byte: prefix, one byte of first, then minRest to maxRest bytes of
// rest. Each syntax here matches exactly the strings of the regular
// expression its comment gives (TestIDSyntaxMatchesPattern compares them
// with the regexp package on generated and edge-case inputs); the regexp
// engine cost several microseconds an append, on every statement,
// header and body check.
type idSyntax struct {
	prefix           string
	first, rest      *[256]bool
	minRest, maxRest int
}

// MatchString reports whether s has the syntax.
func (x idSyntax) MatchString(s string) bool {
	if len(s) < len(x.prefix)+1+x.minRest || len(s) > len(x.prefix)+1+x.maxRest || s[:len(x.prefix)] != x.prefix {
		return false
	}
	s = s[len(x.prefix):]
	if !x.first[s[0]] {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !x.rest[s[i]] {
			return false
		}
	}
	return true
}

// byteSet returns the set of the bytes in each of ranges, a string of
// inclusive pairs ("az09" is a–z and 0–9), and of the bytes of singles.
func byteSet(ranges, singles string) *[256]bool {
	var set [256]bool
	for i := 0; i+1 < len(ranges); i += 2 {
		for c := int(ranges[i]); c <= int(ranges[i+1]); c++ {
			set[c] = true
		}
	}
	for i := 0; i < len(singles); i++ {
		set[singles[i]] = true
	}
	return &set
}

var (
	hexByte     = byteSet("09af", "")
	lowerAlnum  = byteSet("az09", "")
	orgRest     = byteSet("az09", "-")
	gatewayRest = byteSet("az09", ".-")

	// orgIDPattern is auth.Org's ID syntax, ^[a-z0-9][a-z0-9-]{1,62}$;
	// the markers above match it.
	orgIDPattern = idSyntax{first: lowerAlnum, rest: orgRest, minRest: 1, maxRest: 62}
	// gatewayIDPattern, ^[a-z0-9][a-z0-9.-]{1,126}$, also admits dots, so
	// a gateway may be named by its host name.
	gatewayIDPattern = idSyntax{first: lowerAlnum, rest: gatewayRest, minRest: 1, maxRest: 126}
	// hexDigestPattern is ^[0-9a-f]{64}$.
	hexDigestPattern = idSyntax{first: hexByte, rest: hexByte, minRest: 63, maxRest: 63}
	// patientRefPattern is ^pr_[0-9a-f]{64}$.
	patientRefPattern = idSyntax{prefix: patientRefPrefix, first: hexByte, rest: hexByte, minRest: 63, maxRest: 63}
	// pseudonymPattern is ^ps_[0-9a-f]{64}$.
	pseudonymPattern = idSyntax{prefix: "ps_", first: hexByte, rest: hexByte, minRest: 63, maxRest: 63}
)
