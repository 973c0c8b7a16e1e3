package ledger_test

import (
	"fmt"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/healthgw/healthgw/ledger"
)

func ExampleEncode() {
	e, err := ledger.NewEntry("org-a", &ledger.ConsentRevoked{ConsentID: "c-1", Patient: "ps_3f2a"})
	if err != nil {
		panic(err)
	}
	e.Time = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC) // set by the log on Append
	b, err := ledger.Encode(e)
	if err != nil {
		panic(err)
	}
	fmt.Println(string(b))
	back, err := ledger.Decode(b)
	if err != nil {
		panic(err)
	}
	fmt.Println(back.Type, back.Body.(*ledger.ConsentRevoked).ConsentID)
	// Output:
	// {"type":"consent.revoked","v":1,"org":"org-a","time":"2026-05-01T12:00:00.000000000Z","body":{"consent_id":"c-1","patient":"ps_3f2a"}}
	// consent.revoked c-1
}

func ExampleOpenCheckpoint() {
	skey, vkey, err := ledger.GenerateCheckpointKey("healthgw.example/ledger")
	if err != nil {
		panic(err)
	}
	signer, _ := note.NewSigner(skey)
	raw, err := ledger.SignCheckpoint(ledger.Checkpoint{
		Origin: "healthgw.example/ledger",
		Size:   1,
		Hash:   tlog.RecordHash([]byte("first entry")),
	}, signer)
	if err != nil {
		panic(err)
	}
	// A regulator holds only the verifier key.
	verifier, err := ledger.ParseVerifierKey(vkey)
	if err != nil {
		panic(err)
	}
	c, err := ledger.OpenCheckpoint(raw, verifier, "healthgw.example/ledger")
	if err != nil {
		panic(err)
	}
	fmt.Println(c.Origin, c.Size)
	// Output: healthgw.example/ledger 1
}
