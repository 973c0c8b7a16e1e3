package eligibility_test

import (
	"fmt"

	"github.com/healthgw/healthgw/circuits/eligibility"
)

// A refused proof carries a reason (logged on the ledger) and a message
// for the verifier.
func ExampleReason_Message() {
	r := eligibility.ReasonChallengeUsed
	fmt.Printf("%s: %s\n", r, r.Message())
	// Output: challenge.used: The challenge was already used: a proof can be verified once.
}
