package gormlog_test

import (
	"bufio"
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"gorm.io/gorm"

	"github.com/healthgw/healthgw/database"
	"github.com/healthgw/healthgw/database/databasetest"
	"github.com/healthgw/healthgw/internal/testscale"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/ledger/gormlog"
	"github.com/healthgw/healthgw/ledger/verify"
)

// Environment of the crash test's child process.
const (
	crashDSNEnv = "GORMLOG_CRASH_CHILD_DSN"
	crashKeyEnv = "GORMLOG_CRASH_CHILD_KEY"
	crashIDEnv  = "GORMLOG_CRASH_CHILD_IDENTITY"
)

// crashIdentity is the gateway identity of the crash test's child, fixed
// by seeds so that parent and child share it: node key seed, sealing key,
// pseudonym secret, in hex.
func crashIdentity(seeds string) (ledger.Identity, error) {
	b, err := hex.DecodeString(seeds)
	if err != nil || len(b) != 96 {
		return ledger.Identity{}, fmt.Errorf("crash identity: %d bytes, %v", len(b), err)
	}
	seal, err := ecdh.X25519().NewPrivateKey(b[32:64])
	if err != nil {
		return ledger.Identity{}, err
	}
	ps, err := ledger.NewPseudonymizer(b[64:])
	if err != nil {
		return ledger.Identity{}, err
	}
	return ledger.Identity{
		Gateway: "gw-crash", BaseURL: "http://gw-crash.test", NodeKey: ed25519.NewKeyFromSeed(b[:32]),
		SealKey: seal, Pseudonyms: ps,
	}, nil
}

func TestMain(m *testing.M) {
	if dsn := os.Getenv(crashDSNEnv); dsn != "" {
		crashChild(dsn, os.Getenv(crashKeyEnv), os.Getenv(crashIDEnv))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// crashChild appends from many goroutines until it is killed, printing
// "ack <index> <record id>" for every acknowledged append.
func crashChild(dsn, skey, seeds string) {
	ctx := context.Background()
	s, err := note.NewSigner(skey)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	id, err := crashIdentity(seeds)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	db, err := database.Open(ctx, dsn)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	st, err := gormlog.Open(ctx, db, gormlog.Options{Signer: s, CheckpointInterval: 20 * time.Millisecond})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	l, err := ledger.OpenNode(ctx, st, id)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	fmt.Fprintln(out, "ready")
	out.Flush()
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				id := fmt.Sprintf("g%d-%d", g, i)
				e := accessEntry(0)
				e.Body.(*ledger.AccessDecided).RecordID = id
				idx, err := l.Append(ctx, e)
				if err != nil {
					fmt.Fprintln(os.Stderr, "append:", err)
					os.Exit(1)
				}
				mu.Lock()
				fmt.Fprintf(out, "ack %d %s\n", idx, id)
				out.Flush() // acknowledged only once written out
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

// TestCrash kills a process appending under load with SIGKILL and checks
// that, after a restart, the log verifies and holds every entry that was
// acknowledged before the kill.
func TestCrash(t *testing.T) {
	databasetest.EachDSN(t, func(t *testing.T, dsn string) {
		skey, vkey, err := ledger.GenerateCheckpointKey(testOrigin)
		if err != nil {
			t.Fatal(err)
		}
		seeds := make([]byte, 96)
		if _, err := rand.Read(seeds); err != nil {
			t.Fatal(err)
		}
		id, err := crashIdentity(hex.EncodeToString(seeds))
		if err != nil {
			t.Fatal(err)
		}
		id.ReadOnly, id.NodeKey = true, nil
		// On PostgreSQL the killed child's last COMMIT may already be at
		// the server and still run after the kill: the check below must
		// start only once the child's sessions are gone, or the head and
		// the row count can be read on either side of that commit.
		childDSN, app := dsn, ""
		if database.DialectOf(dsn) == database.Postgres {
			app = "gormlog-crash-" + hex.EncodeToString(seeds[:6])
			u, err := url.Parse(dsn)
			if err != nil {
				t.Fatal(err)
			}
			q := u.Query()
			q.Set("application_name", app)
			u.RawQuery = q.Encode()
			childDSN = u.String()
		}
		for round := range 2 { // the second round appends to a crashed log
			acked := runCrashChild(t, childDSN, skey, hex.EncodeToString(seeds), 1500*(round+1))
			db, err := database.Open(t.Context(), dsn)
			if err != nil {
				t.Fatal(err)
			}
			if app != "" {
				waitSessionsGone(t, db, app)
			}
			v, _ := note.NewVerifier(vkey)
			ro, err := gormlog.OpenReadOnly(t.Context(), db, gormlog.Options{})
			if err != nil {
				t.Fatal(err)
			}
			res, err := verify.Local(t.Context(), ro, verify.Options{Verifier: v})
			if err != nil {
				t.Fatalf("round %d: log does not verify after SIGKILL: %v", round, err)
			}
			var rows int64
			if err := db.Raw("SELECT count(*) FROM ledger_entries").Scan(&rows).Error; err != nil {
				t.Fatal(err)
			}
			if uint64(rows) != res.Entries {
				t.Errorf("round %d: %d rows but the head says %d entries: a half-written batch", round, rows, res.Entries)
			}
			// The gateway's start check and its reads (domain view) pass
			// over what the crash left.
			n, err := ledger.OpenNode(t.Context(), ro, id)
			if err != nil {
				t.Fatalf("round %d: the gateway's start check refuses the crashed log: %v", round, err)
			}
			entries, err := n.Read(t.Context(), 0, res.Entries)
			if err != nil {
				t.Fatal(err)
			}
			for idx, rid := range acked {
				if idx >= res.Entries {
					t.Errorf("round %d: acknowledged entry %d lost (log has %d)", round, idx, res.Entries)
					continue
				}
				if b, ok := entries[idx].Body.(*ledger.AccessDecided); !ok || b.RecordID != rid {
					t.Errorf("round %d: entry %d is %+v, acknowledged as %s", round, idx, entries[idx].Body, rid)
				}
			}
			t.Logf("round %d: %d acknowledged before SIGKILL, %d in the log", round, len(acked), res.Entries)
			_ = database.Close(db)
		}
	})
}

// waitSessionsGone waits until no PostgreSQL session has application
// name app: the server has finished whatever the killed child had sent.
func waitSessionsGone(t *testing.T, db *gorm.DB, app string) {
	t.Helper()
	timeout := time.After(testscale.Timeout(30 * time.Second))
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		var n int64
		if err := db.Raw("SELECT count(*) FROM pg_stat_activity WHERE application_name = ?", app).Scan(&n).Error; err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		select {
		case <-tick.C:
		case <-timeout:
			t.Fatalf("%d sessions of the killed child still open on the server", n)
		}
	}
}

// runCrashChild runs the child until it acknowledged at least n entries in
// total over the log's life, kills it, and returns what it acknowledged.
func runCrashChild(t *testing.T, dsn, skey, seeds string, n int) map[uint64]string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashDSNEnv+"="+dsn, crashKeyEnv+"="+skey, crashIDEnv+"="+seeds)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[uint64]string{}
	sc := bufio.NewScanner(stdout)
	killed := false
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 || f[0] != "ack" {
			continue
		}
		idx, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			t.Fatalf("child printed %q", sc.Text())
		}
		acked[idx] = f[2]
		if !killed && idx+1 >= uint64(n) {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("child exited before it was killed: %v", err)
	}
	return acked
}
