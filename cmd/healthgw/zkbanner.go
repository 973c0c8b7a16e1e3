package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/healthgw/healthgw/circuits"
)

// devSetupWithBanner runs setup (the development Groth16 setup) when dir
// holds no keys yet, and when it ends prints the DEVELOPMENT banner to w:
// where the keys are, how long they took, and why production must not use
// them. With keys already in dir it does nothing.
func devSetupWithBanner(ctx context.Context, dir string, setup func(context.Context) error, w io.Writer, now func() time.Time) error {
	if _, err := circuits.ReadManifest(dir); err == nil {
		return nil
	}
	start := now()
	if err := setup(ctx); err != nil {
		return err
	}
	fmt.Fprintf(w, `
======================================================================
 DEVELOPMENT zero-knowledge keys are ready (setup took %s)
   in %s
 They come from a single-party setup: this machine knew the toxic
 waste, so whoever can read it could forge eligibility proofs.
 Never use them in production: run a multi-party ceremony
 (healthgw zk ceremony init|contribute|verify|finalize) and start
 the gateway with --zk-keys <dir> --zk-dev-setup=false.
======================================================================
`, now().Sub(start).Round(time.Second), dir)
	return nil
}
