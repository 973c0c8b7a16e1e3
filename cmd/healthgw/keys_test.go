package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/healthgw/healthgw/database"
	"github.com/healthgw/healthgw/database/databasetest"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/records"
	"github.com/healthgw/healthgw/records/recordstore"
)

type countingLog struct{ n uint64 }

func (l *countingLog) Append(context.Context, ledger.Entry) (uint64, error) {
	l.n++
	return l.n - 1, nil
}

// seedRecords stores n records for hosp-a the way the server does, with
// keys under <data>/keys/kek, and returns their IDs.
func seedRecords(t *testing.T, dsn, data string, n int) []string {
	t.Helper()
	ctx := t.Context()
	db, err := database.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer database.Close(db)
	store, err := recordstore.New(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	pseud, err := ledger.NewPseudonymizer(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{getenv: func(string) string { return "" }}
	v := records.NewVault(store, newKeystore(e, data, true), &countingLog{}, pseud, records.Options{Logger: slog.New(slog.DiscardHandler)})
	var ids []string
	for i := range n {
		r, err := v.Put(ctx, records.PutRequest{
			Holder: "hosp-a", Patient: "p1", Category: records.CategoryNotes,
			ContentType: "text/plain", Content: []byte(fmt.Sprintf("note %d", i)),
		})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	return ids
}

// openAll opens every record with a fresh vault and returns the key
// versions they are under.
func openAll(t *testing.T, dsn, data string, ids []string) map[int]int {
	t.Helper()
	ctx := t.Context()
	db, err := database.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer database.Close(db)
	store, err := recordstore.New(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	pseud, _ := ledger.NewPseudonymizer(make([]byte, 32))
	e := &env{getenv: func(string) string { return "" }}
	v := records.NewVault(store, newKeystore(e, data, false), &countingLog{}, pseud, records.Options{})
	versions := map[int]int{}
	for i, id := range ids {
		r, pt, err := v.Open(ctx, id)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if string(pt) != fmt.Sprintf("note %d", i) {
			t.Fatalf("record %d: content %q", i, pt)
		}
		versions[r.KeyVersion]++
	}
	return versions
}

func TestKeysRotateCommand(t *testing.T) {
	databasetest.EachDSN(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		data := t.TempDir()
		ids := seedRecords(t, dsn, data, 7)
		getenv := func(k string) string {
			if k == "HEALTHGW_DB" {
				return dsn // flags fall back to HEALTHGW_*
			}
			return ""
		}
		var out, errOut bytes.Buffer
		err := run(ctx, []string{"keys", "rotate", "--org", "hosp-a", "--data", data, "--batch", "3"}, getenv, &out, &errOut)
		if err != nil {
			t.Fatalf("keys rotate: %v\n%s", err, errOut.String())
		}
		if got, want := out.String(), "hosp-a: created v2; 7 data keys re-wrapped\n"; got != want {
			t.Errorf("stdout = %q, want %q", got, want)
		}
		if progress := strings.Count(errOut.String(), "data keys re-wrapped under v2"); progress != 3 {
			t.Errorf("stderr has %d progress lines, want 3 (batches of 3):\n%s", progress, errOut.String())
		}
		if got := openAll(t, dsn, data, ids); len(got) != 1 || got[2] != 7 {
			t.Errorf("after rotation, records per key version = %v; want all 7 under v2", got)
		}
		st, err := os.Stat(filepath.Join(data, "keys", "kek", "hosp-a", "v2.key"))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("v2 key file: %v", err)
		}

		out.Reset()
		if err := run(ctx, []string{"keys", "status", "--org", "hosp-a", "--data", data}, getenv, &out, &errOut); err != nil {
			t.Fatal(err)
		}
		if got, want := out.String(), "hosp-a v1: 0 records\nhosp-a v2: 7 records (current)\n"; got != want {
			t.Errorf("keys status = %q, want %q", got, want)
		}

		// Rotate to v3, interrupted (as by ^C) after the first batch;
		// then resume.
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		out.Reset()
		progress := &cancelOnWrite{cancel: cancel}
		err = run(cctx, []string{"keys", "rotate", "--org", "hosp-a", "--data", data, "--batch", "3"}, getenv, &out, progress)
		if err == nil || !strings.Contains(err.Error(), "run it again") {
			t.Fatalf("interrupted rotate: err = %v", err)
		}
		out.Reset()
		if err := run(ctx, []string{"keys", "status", "--org", "hosp-a", "--data", data}, getenv, &out, &errOut); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), "4 records are not under the current version") {
			t.Errorf("status after an interrupted rotation = %q", out.String())
		}
		out.Reset()
		if err := run(ctx, []string{"keys", "rotate", "--org", "hosp-a", "--data", data}, getenv, &out, &errOut); err != nil {
			t.Fatal(err)
		}
		if got, want := out.String(), "hosp-a: resumed: existing v3; 4 data keys re-wrapped\n"; got != want {
			t.Errorf("resumed rotate = %q, want %q", got, want)
		}
		if got := openAll(t, dsn, data, ids); got[3] != 7 {
			t.Errorf("after resume, records per key version = %v", got)
		}
	})
}

func TestKeysCommandErrors(t *testing.T) {
	ctx := t.Context()
	data := t.TempDir()
	getenv := func(string) string { return "" }
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"keys", "rotate", "--data", data}, "--org is required"},
		{[]string{"keys", "rotate", "--org", "hosp-a", "--data", data, "--batch", "0"}, "--batch"},
		{[]string{"keys", "rotate", "--org", "hosp-a", "--data", data}, "no healthgw database at " + filepath.Join(data, "healthgw.db")},
		{[]string{"keys", "init", "--org", "hosp-a", "--data", data}, "pass --create"},
		{[]string{"keys", "frobnicate"}, "unknown command"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args[1:], " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := run(ctx, tt.args, getenv, &out, &errOut)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"keys", "init", "--org", "hosp-a", "--data", data, "--create"}, getenv, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if err := run(ctx, []string{"keys", "init", "--org", "hosp-a", "--data", data, "--create"}, getenv, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if got, want := out.String(), "hosp-a: key-encryption key v1 is current\nhosp-a: key-encryption key v1 is current\n"; got != want {
		t.Errorf("keys init twice = %q, want %q", got, want)
	}
}

// cancelOnWrite cancels a context at the first progress line.
type cancelOnWrite struct {
	bytes.Buffer
	cancel func()
}

func (c *cancelOnWrite) Write(p []byte) (int, error) {
	c.cancel()
	return c.Buffer.Write(p)
}
