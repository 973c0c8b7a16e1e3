package registry_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/database"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/ledger/ledgertest"
	"github.com/healthgw/healthgw/registry"
	"github.com/healthgw/healthgw/registry/registrystore"
)

// Register appends org.registered and returns once the registry shows it.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "registry-example")
	defer os.RemoveAll(dir)
	db, err := database.Open(ctx, filepath.Join(dir, "healthgw.db"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer database.Close(db)

	log := &ledgertest.MemLog{} // any ledger.Log
	reg, _ := registrystore.Open(ctx, db, registrystore.Options{})
	follower := ledger.NewFollower(log, reg)

	key, _ := auth.GenerateSigningKey("ES384")
	jwks, _ := auth.PublicJWKS(key)
	idx, err := registry.Register(ctx, log, follower, auth.CheckOrgJWKS, auth.Org{
		ID: "hosp-a", Name: "Hospital A", Kind: auth.KindHospital, JWKS: string(jwks),
	})
	fmt.Println(idx, err)

	o, _ := reg.Org(ctx, "hosp-a")
	fmt.Println(o.Name, o.Kind, auth.JoinScopes(o.Scopes))
	// Output:
	// 0 <nil>
	// Hospital A hospital system/records.read system/records.write system/consents.read credentials.issue
}
