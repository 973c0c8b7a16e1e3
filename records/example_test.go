package records_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/healthgw/healthgw/database"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/records"
	"github.com/healthgw/healthgw/records/recordstore"
)

func ExampleParseContent() {
	fhir, err := records.ParseContent("application/fhir+json",
		json.RawMessage(`{"resourceType":"Observation","status":"final"}`))
	fmt.Println(fhir.ResourceType, err)

	pdf, err := records.ParseContent("application/pdf", json.RawMessage(`"JVBERi0xLjcK"`))
	fmt.Printf("%q %v\n", pdf.Data, err)

	_, err = records.ParseContent("application/fhir+json", json.RawMessage(`{"status":"final"}`))
	fmt.Println(errors.Is(err, records.ErrInvalid), err)
	// Output:
	// Observation <nil>
	// "%PDF-1.7\n" <nil>
	// true invalid record: FHIR resource has no resourceType
}

// printLog is a stand-in ledger that prints what is appended.
type printLog struct{ n uint64 }

func (l *printLog) Append(_ context.Context, e ledger.Entry) (uint64, error) {
	fmt.Println("ledger:", e.Type)
	l.n++
	return l.n - 1, nil
}

func ExampleVault() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "records-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	db, err := database.Open(ctx, filepath.Join(dir, "healthgw.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer database.Close(db)
	store, err := recordstore.New(ctx, db)
	if err != nil {
		log.Fatal(err)
	}
	keys := records.NewKeystore(records.KeystoreConfig{
		Dir:        filepath.Join(dir, "keys", "kek"),
		Getenv:     os.Getenv,
		AutoCreate: true,
	})
	pseud, err := ledger.NewPseudonymizer(make([]byte, ledger.PseudonymKeySize))
	if err != nil {
		log.Fatal(err)
	}
	vault := records.NewVault(store, keys, &printLog{}, pseud, records.Options{})

	content, err := records.ParseContent(records.FHIRContentType,
		json.RawMessage(`{"resourceType":"Observation","status":"final","code":{"text":"HbA1c"},"subject":{"reference":"Patient/patient-123"},"valueQuantity":{"value":6.9,"unit":"%"}}`))
	if err != nil {
		log.Fatal(err)
	}
	rec, err := vault.Put(ctx, records.PutRequest{
		Holder:       "hosp-a",
		Patient:      "patient-123",
		Category:     records.CategoryLabs,
		ContentType:  content.ContentType,
		Content:      content.Data,
		ResourceType: content.ResourceType,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("stored", rec.ResourceType, "at ledger index", rec.LedgerIndex, "under key version", rec.KeyVersion)

	_, plaintext, err := vault.Open(ctx, rec.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(plaintext))

	if _, err := vault.Shred(ctx, "hosp-a", rec.ID); err != nil {
		log.Fatal(err)
	}
	_, _, err = vault.Open(ctx, rec.ID)
	fmt.Println(errors.Is(err, records.ErrNotFound))
	// Output:
	// ledger: record.registered
	// stored Observation at ledger index 0 under key version 1
	// {"resourceType":"Observation","status":"final","code":{"text":"HbA1c"},"subject":{"reference":"Patient/patient-123"},"valueQuantity":{"value":6.9,"unit":"%"}}
	// ledger: record.shredded
	// true
}

func ExampleRotate() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "records-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	db, err := database.Open(ctx, filepath.Join(dir, "healthgw.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer database.Close(db)
	store, err := recordstore.New(ctx, db)
	if err != nil {
		log.Fatal(err)
	}
	keys := records.NewKeystore(records.KeystoreConfig{Dir: filepath.Join(dir, "kek"), AutoCreate: true})
	if _, err := keys.Current(ctx, "hosp-a"); err != nil { // version 1
		log.Fatal(err)
	}

	res, err := records.Rotate(ctx, store, keys, "hosp-a", records.RotateOptions{
		Progress: func(p records.RotateProgress) {
			fmt.Printf("%d/%d data keys moved to v%d\n", p.Rewrapped, p.Total, p.To)
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("now at version", res.To, "created:", res.Created)
	// Output:
	// now at version 2 created: true
}

func ExampleValidateFHIR() {
	_, err := records.ValidateFHIR([]byte(`{"resourceType":"Observation","status":"banana","code":{"text":"HbA1c"}}`), "pat-1", records.CategoryLabs)
	var ve *records.ValidationError
	if errors.As(err, &ve) {
		fmt.Println(ve.Element)
		fmt.Println(ve.Message)
	}
	rt, err := records.ValidateFHIR([]byte(`{"resourceType":"Observation","status":"final","code":{"text":"HbA1c"},"subject":{"reference":"Patient/pat-1"}}`), "pat-1", records.CategoryLabs)
	fmt.Println(rt, err)
	// Output:
	// Observation.status
	// not a valid FHIR R4 resource: Observation.status: code type mismatch
	// Observation <nil>
}
