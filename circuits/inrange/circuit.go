package inrange

import (
	"github.com/consensys/gnark/frontend"

	"github.com/healthgw/healthgw/circuits/credential"
)

// Circuit proves: the selected attribute of a valid, unexpired credential
// held by the prover lies in [Lo, Hi].
type Circuit struct {
	Credential credential.Gadget
	Public     credential.Public `gnark:",public"`
	Lo         frontend.Variable `gnark:",public"`
	Hi         frontend.Variable `gnark:",public"`
}

// Define declares the constraints.
func (c *Circuit) Define(api frontend.API) error {
	attr, err := c.Credential.Verify(api, &c.Public)
	if err != nil {
		return err
	}
	credential.RangeCheck(api, c.Lo, credential.ValueBits)
	credential.RangeCheck(api, c.Hi, credential.ValueBits)
	credential.AssertLessOrEqual(api, c.Lo, attr, credential.ValueBits)
	credential.AssertLessOrEqual(api, attr, c.Hi, credential.ValueBits)
	return nil
}
