package records_test

import (
	"errors"
	"log/slog"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/healthgw/healthgw/database"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/records"
	"github.com/healthgw/healthgw/records/recordstore"
)

// benchVault is a vault over a fresh SQLite file and an in-memory log,
// for benchmarks; opts.Logger is set to discard.
func benchVault(b *testing.B, opts records.Options) *records.Vault {
	b.Helper()
	ctx := b.Context()
	db, err := database.Open(ctx, filepath.Join(b.TempDir(), "records.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { database.Close(db) })
	store, err := recordstore.New(ctx, db)
	if err != nil {
		b.Fatal(err)
	}
	pseud, err := ledger.NewPseudonymizer(testPseudonymKey)
	if err != nil {
		b.Fatal(err)
	}
	opts.Logger = slog.New(slog.DiscardHandler)
	return records.NewVault(store, records.NewKeystore(records.KeystoreConfig{Dir: b.TempDir(), AutoCreate: true}),
		newMemLog(b), pseud, opts)
}

// BenchmarkVaultRead measures Vault.Read on SQLite up to a refusal (what a
// caller who may not read pays: the lookup and the decision) for a
// record that does not exist and for existing records of 1 KiB and
// 1 MiB, and a permitted read of the 1 MiB record. A denied read should
// cost what a missing one does, whatever the record's size.
func BenchmarkVaultRead(b *testing.B) {
	ctx := b.Context()
	v := benchVault(b, records.Options{})
	put := func(size int) string {
		content := make([]byte, size)
		for i := range content {
			content[i] = byte(i * 31)
		}
		r, err := v.Put(ctx, records.PutRequest{Holder: "hosp-a", Patient: "patient-123",
			Category: records.CategoryImaging, ContentType: "application/dicom", Content: content})
		if err != nil {
			b.Fatal(err)
		}
		return r.ID
	}
	small, large := put(1<<10), put(1<<20)
	refused := errors.New("refused")
	deny := func(records.Record) error { return refused }
	for _, bc := range []struct {
		name      string
		id        string
		authorize func(records.Record) error
		want      error
	}{
		{"missing", uuid.NewString(), deny, records.ErrNotFound},
		{"denied/1KiB", small, deny, refused},
		{"denied/1MiB", large, deny, refused},
		{"permitted/1KiB", small, func(records.Record) error { return nil }, nil},
		{"permitted/1MiB", large, func(records.Record) error { return nil }, nil},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			cpu0 := processCPU(b)
			for b.Loop() {
				if _, _, err := v.Read(ctx, bc.id, bc.authorize); !errors.Is(err, bc.want) {
					b.Fatalf("Read: %v, want %v", err, bc.want)
				}
			}
			b.ReportMetric(float64((processCPU(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/read")
		})
	}
}

// processCPU is this process's user and system CPU time so far: on a
// shared machine it moves less with the neighbours than the wall clock.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
