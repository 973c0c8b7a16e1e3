package authstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/auth/authstore"
	"github.com/healthgw/healthgw/database"
)

// A jti can be claimed once until it expires.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "authstore-example")
	defer os.RemoveAll(dir)
	db, err := database.Open(ctx, filepath.Join(dir, "healthgw.db"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer database.Close(db)

	store, _ := authstore.Open(ctx, db, authstore.Options{})
	until := time.Now().Add(5 * time.Minute)
	fmt.Println(store.Claim(ctx, "hosp-a", "jti-1", until))
	fmt.Println(errors.Is(store.Claim(ctx, "hosp-a", "jti-1", until), auth.ErrReplay))
	// Output:
	// <nil>
	// true
}
