package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/healthgw/healthgw/database/databasetest"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/ledger/gormlog"
	"github.com/healthgw/healthgw/ledger/ledgertest"
	"github.com/healthgw/healthgw/ledger/witness"
)

// lateWitness is a witness server whose witness is created once the log
// it follows exists.
type lateWitness struct {
	skey, vkey string
	w          atomic.Pointer[witness.Witness]
	srv        *httptest.Server
}

func newLateWitness(t *testing.T, name string) *lateWitness {
	t.Helper()
	skey, vkey, err := witness.GenerateKey(name)
	if err != nil {
		t.Fatal(err)
	}
	lw := &lateWitness{skey: skey, vkey: vkey}
	lw.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w := lw.w.Load()
		if w == nil {
			http.Error(rw, "not ready", http.StatusServiceUnavailable)
			return
		}
		w.Handler().ServeHTTP(rw, r)
	}))
	t.Cleanup(lw.srv.Close)
	return lw
}

func (lw *lateWitness) follow(t *testing.T, origin, vkey string) {
	t.Helper()
	v, err := ledger.ParseVerifierKey(vkey)
	if err != nil {
		t.Fatal(err)
	}
	w, err := witness.New(t.Context(), databasetest.SQLite(t), lw.skey, []witness.Log{{Origin: origin, Verifier: v}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	lw.w.Store(w)
}

// TestWitnessedGateway: a gateway submits its checkpoints to two
// witnesses and serves them cosigned; `ledger verify --witness-threshold 2`
// passes with both, fails (exit 2) once one is down.
func TestWitnessedGateway(t *testing.T) {
	w1, w2 := newLateWitness(t, "witness-1.example"), newLateWitness(t, "witness-2.example")
	g := newTestGateway(t, func(c *serveConfig) {
		c.Witnesses = listFlag{w1.vkey + "@" + w1.srv.URL, w2.vkey + "@" + w2.srv.URL}
	})
	origin := ledgerOrigin(g.store, g.cfg)
	w1.follow(t, origin, g.vkey)
	w2.follow(t, origin, g.vkey)
	g.register("hosp-a", "hospital")
	g.waitCheckpoint()
	if n, err := g.witnesses.Submit(t.Context()); err != nil || n != 2 {
		t.Fatalf("Submit: %d cosignatures, %v; want 2", n, err)
	}
	verifyArgs := func(threshold int) []string {
		return []string{"ledger", "verify", "--quiet", "--url", g.url, "--key", g.vkey,
			"--witness", w1.vkey, "--witness", w2.vkey, "--witness-threshold", strconv.Itoa(threshold)}
	}
	stdout, _, err := runCLI(t, verifyArgs(2)...)
	if err != nil || !strings.Contains(stdout, "2 valid witness cosignatures") {
		t.Fatalf("verify with both witnesses: %v\n%s", err, stdout)
	}

	w2.srv.Close()
	g.register("hosp-b", "hospital")
	g.waitCheckpoint()
	if n, err := g.witnesses.Submit(t.Context()); err != nil || n != 1 {
		t.Fatalf("Submit with one witness down: %d, %v; want 1", n, err)
	}
	_, _, err = runCLI(t, verifyArgs(2)...)
	var ex exitError
	if !errors.As(err, &ex) || ex.code != exitVerifyFailed {
		t.Errorf("verify with threshold 2 and one witness down: %v, want exit status %d", err, exitVerifyFailed)
	}
	if _, _, err := runCLI(t, verifyArgs(1)...); err != nil {
		t.Errorf("verify with threshold 1: %v", err)
	}
	if _, _, err := runCLI(t, append(verifyArgs(1)[:len(verifyArgs(1))-2], "--witness-threshold", "3")...); err == nil || errors.As(err, &ex) {
		t.Errorf("threshold above the keys given: %v, want a usage error", err)
	}
}

// waitCheckpoint waits for a checkpoint covering the whole log.
func (g *testGateway) waitCheckpoint() {
	g.t.Helper()
	if _, err := g.ledger.(ledger.CheckpointWaiter).WaitCheckpoint(g.t.Context(), g.size()); err != nil {
		g.t.Fatal(err)
	}
}

// TestWitnessServe runs `healthgw witness serve` for a log and has it
// cosign the log's checkpoint over HTTP; a restart keeps its key.
func TestWitnessServe(t *testing.T) {
	keys := newLedgerKeys(t)
	db := databasetest.SQLite(t)
	fillLog(t, db, keys.signer, ledgertest.Identity("gw-test"), 0, 5)
	l, err := gormlog.OpenReadOnly(t.Context(), db, gormlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := l.Checkpoint(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	for run := range 2 {
		ctx, cancel := context.WithCancel(t.Context())
		pr, pw := io.Pipe()
		done := make(chan error, 1)
		go func() {
			done <- run0(ctx, []string{"witness", "serve", "--addr", "127.0.0.1:0", "--data", data, "--name", "witness.test",
				"--log", ledgerTestOrigin + "=" + keys.vkeyFile}, pw)
			pw.Close()
		}()
		rd := bufio.NewReader(pr)
		first, err := rd.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		keyLine, err := rd.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		go func() { _, _ = io.Copy(io.Discard, rd) }()
		addr := strings.TrimSpace(strings.TrimPrefix(first, "healthgw witness listening on "))
		vkey := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(keyLine), "witness key"))
		v, err := witness.NewVerifier(vkey)
		if err != nil {
			t.Fatalf("banner key %q: %v", keyLine, err)
		}
		resp, err := http.Post(addr+"/add-checkpoint", "text/plain", bytes.NewReader(witness.FormatAddCheckpoint(0, nil, raw)))
		if err != nil {
			t.Fatal(err)
		}
		sig, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := http.StatusOK
		if run == 1 {
			want = http.StatusConflict // it remembers size 5
		}
		if resp.StatusCode != want {
			t.Fatalf("run %d: add-checkpoint %d %s, want %d", run, resp.StatusCode, sig, want)
		}
		if run == 0 {
			if _, err := note.Open(append(bytes.Clone(raw), sig...), note.VerifierList(v)); err != nil {
				t.Errorf("cosignature: %v", err)
			}
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("witness serve: %v", err)
		}
	}
}

// run0 runs the CLI with stdout w and no environment.
func run0(ctx context.Context, args []string, w io.Writer) error {
	return run(ctx, args, func(string) string { return "" }, w, io.Discard)
}
