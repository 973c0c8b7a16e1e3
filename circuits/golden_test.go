package circuits_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/healthgw/healthgw/circuits"
)

var update = flag.Bool("update", false, "rewrite testdata/constraints.golden")

// TestConstraintsGolden pins every statement's size, so that any circuit
// change is deliberate: update with go test ./circuits -run Golden -update,
// and bump Statement.Version (old keys no longer fit).
func TestConstraintsGolden(t *testing.T) {
	var b strings.Builder
	b.WriteString("# statement version constraints public_inputs secret_inputs (R1CS, BN254)\n")
	for _, s := range circuits.Statements() {
		ccs, err := circuits.Compile(s)
		if err != nil {
			t.Fatal(err)
		}
		_, secret, public := ccs.GetNbVariables()
		// public counts the constant-one wire.
		fmt.Fprintf(&b, "%s %d %d %d %d\n", s, s.Version(), ccs.GetNbConstraints(), public-1, secret)
	}
	got := b.String()
	path := filepath.Join("testdata", "constraints.golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("constraint counts changed (-golden +got); if deliberate, bump the version and run with -update:\n%s", diff)
	}
}
