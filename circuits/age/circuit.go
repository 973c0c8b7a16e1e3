package age

import (
	"github.com/consensys/gnark/frontend"

	"github.com/healthgw/healthgw/circuits/credential"
)

// Circuit proves: the selected date attribute of a valid, unexpired
// credential held by the prover is on or before Cutoff.
type Circuit struct {
	Credential credential.Gadget
	Public     credential.Public `gnark:",public"`
	Cutoff     frontend.Variable `gnark:",public"`
}

// Define declares the constraints.
func (c *Circuit) Define(api frontend.API) error {
	attr, err := c.Credential.Verify(api, &c.Public)
	if err != nil {
		return err
	}
	credential.RangeCheck(api, c.Cutoff, credential.ValueBits)
	credential.AssertLessOrEqual(api, attr, c.Cutoff, credential.ValueBits)
	return nil
}
