package comet_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"

	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"

	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/ledger/comet"
)

// A checkpoint names the chain and height whose next block header carries
// the same root as its app_hash; a verifier reads them back from the
// extension line.
func ExampleParseCheckpointHeight() {
	skey, vkey, _ := ledger.GenerateCheckpointKey("hospital-1.example/ledger")
	signer, _ := note.NewSigner(skey)
	verifier, _ := note.NewVerifier(vkey)

	body := comet.MarshalCheckpoint("hospital-1.example/ledger", "healthgw-local", comet.State{Height: 42, Size: 7})
	signed, _ := note.Sign(&note.Note{Text: string(body)}, signer)

	c, rest, _, err := log.ParseCheckpoint(signed, "hospital-1.example/ledger", verifier)
	if err != nil {
		panic(err)
	}
	chain, height, err := comet.ParseCheckpointHeight(rest)
	fmt.Println(c.Size, chain, height, err)
	// Output:
	// 7 healthgw-local 42 <nil>
}

// A gateway opens its node from a CometBFT home created by
// `healthgw consortium init` and its ledger (a ledger.Node) over it.
func ExampleOpen() {
	ctx := context.Background()
	skey, _, err := ledger.GenerateCheckpointKey("hospital-1.example/ledger")
	if err != nil {
		panic(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		panic(err)
	}
	l, err := comet.Open(ctx, comet.Config{
		Home:   "testnet/hospital-1/comet",
		Signer: signer,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, nil)),
	})
	if err != nil {
		// This example runs where no consortium was laid out yet.
		fmt.Println("no consortium home:", errors.Is(err, fs.ErrNotExist))
		return
	}
	defer l.Close()
	// The store replicates envelopes; the gateway's node signs, seals and
	// opens them (and registers the gateway the first time).
	seal, _ := ledger.NewSealKey()
	ps, _ := ledger.NewPseudonymizer(make([]byte, ledger.PseudonymKeySize)) // the consortium's shared secret
	gw := l.Gateway()
	node, err := ledger.OpenNode(ctx, l, ledger.Identity{
		Gateway: gw.ID, BaseURL: "https://hospital-1.example", NodeKey: gw.PrivateKey, SealKey: seal, Pseudonyms: ps,
	})
	if err != nil {
		panic(err)
	}
	e, _ := ledger.NewEntry(ledger.OrgPatient, &ledger.ConsentRevoked{ConsentID: "c-1", Patient: ps.Pseudonym("patient-1")})
	idx, err := node.Append(ctx, e) // returns once the block is committed
	fmt.Println(idx, err)
	// Output: no consortium home: true
}
