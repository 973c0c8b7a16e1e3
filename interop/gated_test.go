package interop

import (
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/healthgw/healthgw/access"
	"github.com/healthgw/healthgw/access/justificationstore"
	"github.com/healthgw/healthgw/api"
	"github.com/healthgw/healthgw/consent"
	"github.com/healthgw/healthgw/consent/consentstore"
	"github.com/healthgw/healthgw/database"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/ledger/gormlog"
	"github.com/healthgw/healthgw/ledger/ledgertest"
	"github.com/healthgw/healthgw/records"
	"github.com/healthgw/healthgw/records/recordstore"
)

// gatedRecords are the records the FHIR clients read: Observations of
// patient pat-1 held by hosp-b and granted to hosp-a for treatment
// (oldest first), and a Condition held by hosp-b that no grant covers.
type gatedRecords struct {
	observations []string
	condition    string
	log          *ledger.Node
}

// mountRecords mounts the record and consent routes on s over the real
// consent-gated read: access.Service on a SQLite vault, the consent
// projection and the embedded ledger.
func mountRecords(t *testing.T, s *api.Server, keys api.EncryptionKeys, orgs access.Orgs) *gatedRecords {
	t.Helper()
	ctx := t.Context()
	dir := t.TempDir()
	db, err := database.Open(ctx, filepath.Join(dir, "healthgw.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { database.Close(db) })
	skey, _, err := note.GenerateKey(rand.Reader, "interop.test/log")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	st, err := gormlog.Open(ctx, db, gormlog.Options{Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	// The gateway's node: entry 0 registers it, and as the log's one
	// gateway it is the home of every org.
	l, err := ledger.OpenNode(ctx, st, ledgertest.Identity("interop-gw"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	cs, err := consentstore.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	follower := ledger.NewFollower(l, cs)
	store, err := recordstore.New(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	pkey := make([]byte, ledger.PseudonymKeySize)
	rand.Read(pkey)
	pseud, err := ledger.NewPseudonymizer(pkey)
	if err != nil {
		t.Fatal(err)
	}
	kek := records.NewKeystore(records.KeystoreConfig{Dir: filepath.Join(dir, "kek"), Getenv: os.Getenv, AutoCreate: true})
	vault := records.NewVault(store, kek, l, pseud, records.Options{})
	justs, err := justificationstore.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	svc := access.New(access.Config{Vault: vault, Grants: cs, Orgs: orgs, Justifications: justs, Log: l, Sync: follower})
	s.MountRecords(vault, svc, keys)
	s.MountConsent(api.ConsentDeps{
		Changes: svc,
		Queries: access.NewQueries(access.QueriesConfig{Store: cs, Pseud: pseud, Log: l, Sync: follower}),
		Pseud:   pseud,
	})

	out := &gatedRecords{log: l}
	put := func(category records.Category, doc string) string {
		t.Helper()
		c, err := records.ParseContent(records.FHIRContentType, json.RawMessage(doc))
		if err != nil {
			t.Fatal(err)
		}
		r, err := vault.Put(ctx, records.PutRequest{Holder: "hosp-b", Patient: "pat-1", Category: category, ContentType: c.ContentType, Content: c.Data, ResourceType: c.ResourceType})
		if err != nil {
			t.Fatal(err)
		}
		return r.ID
	}
	for _, v := range []string{"6.9", "7.2", "7.4"} {
		out.observations = append(out.observations, put(records.CategoryLabs,
			`{"resourceType":"Observation","status":"final","code":{"text":"HbA1c"},"subject":{"reference":"Patient/pat-1"},"valueQuantity":{"value":`+v+`,"unit":"%"}}`))
	}
	out.condition = put("conditions", `{"resourceType":"Condition","subject":{"reference":"Patient/pat-1"},"code":{"text":"Type 2 diabetes"}}`)
	if _, _, err := svc.Grant(ctx, pseud.Pseudonym("pat-1"), consent.Grant{
		Grantee: consent.Grantee{Org: "hosp-a"}, Effect: consent.Permit, Actions: []consent.Action{consent.ActionRead},
		Categories: []string{"labs"}, Purposes: []consent.Purpose{consent.PurposeTreatment},
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// decisions counts the access.decided entries on the ledger.
func (g *gatedRecords) decisions(t *testing.T) (permits, denies int) {
	t.Helper()
	n, err := g.log.Size(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	es, err := g.log.Read(t.Context(), 0, n)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if ad, ok := e.Body.(*ledger.AccessDecided); ok {
			if ad.Decision == "permit" {
				permits++
			} else {
				denies++
			}
		}
	}
	return permits, denies
}
