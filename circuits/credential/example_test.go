package credential_test

import (
	"crypto/rand"
	"fmt"

	"github.com/healthgw/healthgw/circuits/credential"
)

// A hospital issues a credential over a patient's attributes to the
// holder commitment the patient app sent.
func Example() {
	issuer, _ := credential.GenerateIssuerKey(rand.Reader) // register issuer.Public() on the ledger

	// In the patient app.
	secret, _ := credential.NewSecret(rand.Reader)
	holder := secret.Commitment()

	// At the hospital.
	attrs, err := credential.PatientV1.Parse(map[string]string{
		"birth_date": "1990-04-01",
		"hba1c":      "7.2",
		"diagnosis":  "E11.9",
	})
	if err != nil {
		panic(err)
	}
	expiry, _ := credential.ParseDay("2027-12-31")
	cred, err := credential.Issue(issuer, holder, credential.PatientV1, attrs, expiry)
	if err != nil {
		panic(err)
	}
	file, _ := credential.MarshalCredential(cred) // hand this to the patient app

	// Back in the patient app.
	got, err := credential.ParseCredential(file)
	fmt.Println(err, got.Check(secret, expiry))
	hba1c, _ := credential.PatientV1.Format("hba1c", got.Attributes[2])
	fmt.Println(hba1c)
	// Output:
	// <nil> <nil>
	// 7.2
}
