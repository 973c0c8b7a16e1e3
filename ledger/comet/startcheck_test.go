package comet_test

import (
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
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	l, err := comet.Open(ctx, comet.Config{Home: n.Home, Signer: n.Signer})
	if err == nil {
		l.Close()
	}
	return err
}

// TestStartRefusesChangedEntry: one byte of an entry in the middle of a
// stopped node's log is changed (the database's own checksums are valid):
// the node refuses to start, naming the entry.
func TestStartRefusesChangedEntry(t *testing.T) {
	net := comettest.NewNetwork(t, 1, comettest.Options{})
	for i := range 5 {
		if _, err := net.Log(0).Append(t.Context(), entry(t, i)); err != nil {
			t.Fatal(err)
		}
	}
	net.StopNode(0)
	if err := reopen(t, net, 0); err != nil {
		t.Fatalf("restart of an intact node: %v", err)
	}
	db := appDB(t, net.Node(0))
	key := binary.BigEndian.AppendUint64([]byte{'e'}, 2)
	b, err := db.Get(key)
	if err != nil || b == nil {
		t.Fatalf("read entry 2: %v", err)
	}
	b = append([]byte(nil), b...)
	b[len(b)/2] ^= 0x01
	if err := db.SetSync(key, b); err != nil {
		t.Fatal(err)
	}
	db.Close()

	err = reopen(t, net, 0)
	if !errors.Is(err, comet.ErrCorrupt) || !strings.Contains(err.Error(), "entry 2") {
		t.Fatalf("restart with entry 2 changed = %v, want ErrCorrupt naming entry 2", err)
	}
}

// TestStartRefusesTornJournal: the last write of a stopped node's ledger
// database is torn (its journal cut short): goleveldb's default recovery
// would silently drop the torn records; in strict mode the node refuses to
// start and says the database is damaged.
func TestStartRefusesTornJournal(t *testing.T) {
	net := comettest.NewNetwork(t, 1, comettest.Options{})
	for i := range 5 {
		if _, err := net.Log(0).Append(t.Context(), entry(t, i)); err != nil {
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
