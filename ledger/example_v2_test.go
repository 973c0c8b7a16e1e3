package ledger_test

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/healthgw/healthgw/ledger"
)

// A gateway writes a record.registered in format v2: the patient appears
// as a reference blinded by the statement's salt, the header is signed
// with the gateway's node key, the leaf is what the public tree holds, and
// the opening is sealed to the parties.
func ExampleSigner_NewEntry() {
	// Fixed keys and salt so the output is stable; real ones come from
	// key files and ledger.NewSalt.
	nodeKey := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	signer, err := ledger.NewSigner("gw-a.example", nodeKey)
	if err != nil {
		panic(err)
	}
	secret := make([]byte, ledger.PseudonymKeySize) // the gateway's pseudonym secret
	patient, err := ledger.PatientKey(secret, "patient-123")
	if err != nil {
		panic(err)
	}
	var salt ledger.Salt // from ledger.NewSalt in real use
	salt[0] = 1
	statement, header, leaf, err := signer.NewEntry("org-a", salt, &ledger.RecordRegisteredV2{
		RecordID: "r-1", Holder: "org-a", Category: "lab",
		Patient:    ledger.PatientRef(patient, salt),
		Commitment: "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
	})
	if err != nil {
		panic(err)
	}
	leaf.Time = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC) // set by the log
	public, err := ledger.EncodeLeaf(leaf)
	if err != nil {
		panic(err)
	}
	fmt.Println(string(public))

	// A consortium node checks the header without the body.
	fmt.Println("signature:", ledger.VerifyHeader(header, signer.Public()))
	fmt.Println("leaf:", ledger.CheckLeaf(leaf, header))

	// The holder and a regulator can open; an outsider cannot.
	holder, _ := ledger.NewSealKey()
	regulator, _ := ledger.NewSealKey()
	outsider, _ := ledger.NewSealKey()
	sealed, err := ledger.SealOpening(ledger.Opening{Statement: statement}, header,
		[]*ecdh.PublicKey{holder.PublicKey(), regulator.PublicKey()})
	if err != nil {
		panic(err)
	}
	opening, err := ledger.OpenSealed(sealed, regulator)
	if err != nil {
		panic(err)
	}
	st, err := ledger.CheckOpening(opening, header)
	if err != nil {
		panic(err)
	}
	body := st.Body.(*ledger.RecordRegisteredV2)
	fmt.Println("opened:", st.Type, body.RecordID, body.Category)
	fmt.Println("about patient-123:", ledger.IsAbout(patient, st.Salt, body.Patient))
	_, err = ledger.OpenSealed(sealed, outsider)
	fmt.Println("outsider:", errors.Is(err, ledger.ErrNotRecipient))
	// Output:
	// {"v":2,"type":"record.registered","time":"2026-05-01T12:00:00.000000000Z","seal":"e4b08b08cab1da5e912a506cab92f432ac7a7754ebabff9b51931e4e88efc5ef"}
	// signature: <nil>
	// leaf: <nil>
	// opened: record.registered r-1 lab
	// about patient-123: true
	// outsider: true
}
