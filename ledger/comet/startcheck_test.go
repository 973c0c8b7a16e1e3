package comet_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	dbm "github.com/cometbft/cometbft-db"

	"github.com/healthgw/healthgw/internal/testscale"
	"github.com/healthgw/healthgw/ledger/comet"
	"github.com/healthgw/healthgw/ledger/comet/comettest"
)

// appDB opens stopped node n's ledger database (goleveldb, as Open does).
func appDB(t *testing.T, n *comettest.Node) dbm.DB {
	t.Helper()
	db, err := dbm.NewGoLevelDB("healthgw-ledger", filepath.Join(n.Home, "data"))
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// reopen starts stopped node i again and returns Open's error (nil: it
// started, and is closed again).
func reopen(t *testing.T, net *comettest.Network, i int) error {
	t.Helper()
	n := net.Node(i)
	ctx, cancel := context.WithTimeout(t.Context(), testscale.Timeout(time.Minute))
	defer cancel()
	l, err := comet.Open(ctx, comet.Config{Home: n.Home, Signer: n.Signer})
	if err == nil {
		l.Close()
	}
	return err
}

// TestStartRefusesChangedEntry: one byte of an entry in the middle of a
// stopped node's log is changed (the database's own checksums are valid):
// its public leaf, or its envelope (the signed header, or the sealed
// opening's ciphertext, which no leaf hash covers): the node refuses to
// start, naming the entry and saying why.
func TestStartRefusesChangedEntry(t *testing.T) {
	for _, tc := range []struct {
		name   string
		prefix byte   // 'e' leaf, 'v' the entry's transaction (envelope)
		field  string // for 'v': the JSON member whose base64 text changes
		want   string
	}{
		{"leaf", 'e', "", "entry 2: its bytes do not match its stored leaf hash"},
		{"sealed opening", 'v', "sealed", "entry 2: its stored transaction (the envelope its author signed) does not verify"},
		{"header", 'v', "header", "entry 2: its stored transaction (the envelope its author signed) does not verify"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			net := comettest.NewNetwork(t, 1, gateways)
			for i := range 5 { // entries 1-5, after the gateway's registration
				if _, err := net.Ledger(0).Append(t.Context(), entry(t, i)); err != nil {
					t.Fatal(err)
				}
			}
			net.StopNode(0)
			if err := reopen(t, net, 0); err != nil {
				t.Fatalf("restart of an intact node: %v", err)
			}
			db := appDB(t, net.Node(0))
			key := binary.BigEndian.AppendUint64([]byte{tc.prefix}, 2)
			b, err := db.Get(key)
			if err != nil || b == nil {
				t.Fatalf("read %c of entry 2: %v", tc.prefix, err)
			}
			b = bytes.Clone(b)
			at := len(b) / 2
			if tc.field != "" {
				// One base64 letter of the field, changed to another: the
				// JSON still decodes, the bytes it carries differ.
				start := bytes.Index(b, []byte(`"`+tc.field+`":"`)) + len(tc.field) + 4
				end := start + bytes.IndexByte(b[start:], '"')
				at = (start + end) / 2
				if b[at] == 'A' {
					b[at] = 'B'
				} else {
					b[at] = 'A'
				}
			} else {
				b[at] ^= 0x01
			}
			if err := db.SetSync(key, b); err != nil {
				t.Fatal(err)
			}
			db.Close()

			err = reopen(t, net, 0)
			if !errors.Is(err, comet.ErrCorrupt) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("restart with entry 2 changed = %v, want ErrCorrupt saying %q", err, tc.want)
			}
			t.Logf("refused to start: %v", err)
		})
	}
}

// TestStartRefusesTornJournal: the last write of a stopped node's ledger
// database is torn (its journal cut short): goleveldb's default recovery
// would silently drop the torn records; in strict mode the node refuses to
// start and says the database is damaged.
func TestStartRefusesTornJournal(t *testing.T) {
	net := comettest.NewNetwork(t, 1, gateways)
	for i := range 5 {
		if _, err := net.Ledger(0).Append(t.Context(), entry(t, i)); err != nil {
			t.Fatal(err)
		}
	}
	net.StopNode(0)
	dir := filepath.Join(net.Node(0).Home, "data", "healthgw-ledger.db")
	journals, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil || len(journals) == 0 {
		t.Fatalf("no journal in %s: %v", dir, err)
	}
	sort.Strings(journals)
	journal := journals[len(journals)-1]
	fi, err := os.Stat(journal)
	if err != nil || fi.Size() < 64 {
		t.Fatalf("journal %s: %v (size %d)", journal, err, fi.Size())
	}
	if err := os.Truncate(journal, fi.Size()-20); err != nil {
		t.Fatal(err)
	}
	err = reopen(t, net, 0)
	if !errors.Is(err, comet.ErrCorrupt) || !strings.Contains(err.Error(), "healthgw-ledger") {
		t.Fatalf("restart with a torn journal = %v, want ErrCorrupt naming the ledger database", err)
	}
}
