package records_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/healthgw/healthgw/database/databasetest"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/records"
)

// streamed is a streamed upload request of a PDF for patient-123.
func streamed() records.PutRequest {
	return records.PutRequest{Holder: "hosp-a", Patient: "patient-123", Category: records.CategoryImaging, ContentType: "application/pdf"}
}

func randomContent(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func (f *fixture) pieceRows(t *testing.T) int64 {
	t.Helper()
	var n int64
	if err := f.db.Table("record_pieces").Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

// readAllStream reads a record with ReadStream, whole.
func readAllStream(t *testing.T, v *records.Vault, id string) (records.Record, []byte, error) {
	t.Helper()
	rec, body, err := v.ReadStream(t.Context(), id, nil)
	if err != nil {
		return rec, nil, err
	}
	defer body.Close()
	b, err := io.ReadAll(body)
	return rec, b, err
}

// TestPutStreamRoundTrip: content of every size class goes in streamed
// and comes out of both reads unchanged; content above StreamThreshold
// is kept in pieces of at most PieceSize, its commitment is the SHA-256
// of the whole envelope, as the ledger says, and no plaintext is stored.
func TestPutStreamRoundTrip(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, records.Options{})
		ctx := t.Context()
		for _, tc := range []struct {
			size       int
			wantPieces int
		}{
			{1, 0},
			{records.StreamThreshold, 0},
			{records.StreamThreshold + 1, 2},      // 16 full chunks and a byte
			{3*records.StreamChunkSize*16 + 7, 4}, // 3 full pieces' worth and a little
		} {
			t.Run(fmt.Sprint(tc.size), func(t *testing.T) {
				content := randomContent(t, tc.size)
				digest := sha256.Sum256(content)
				req := streamed()
				req.ContentSHA256 = digest[:]
				rec, err := f.vault.PutStream(ctx, req, bytes.NewReader(content))
				if err != nil {
					t.Fatalf("PutStream: %v", err)
				}
				if rec.Size != int64(tc.size) || rec.ContentType != "application/pdf" {
					t.Errorf("record %+v", rec)
				}
				stored, err := f.store.Load(ctx, rec.ID)
				if err != nil {
					t.Fatal(err)
				}
				if stored.Pieces != tc.wantPieces {
					t.Errorf("%d pieces, want %d", stored.Pieces, tc.wantPieces)
				}
				wantFormat := records.FormatVersion
				if tc.wantPieces > 0 {
					wantFormat = records.FormatStream
				}
				if stored.Format != wantFormat || len(stored.Ciphertext) != records.SealedSize(wantFormat, tc.size) {
					t.Errorf("format %d, %d envelope bytes; want format %d, %d bytes", stored.Format, len(stored.Ciphertext), wantFormat, records.SealedSize(wantFormat, tc.size))
				}
				sum := sha256.Sum256(stored.Ciphertext)
				if rec.Commitment != hex.EncodeToString(sum[:]) {
					t.Errorf("commitment %s is not the SHA-256 of the envelope", rec.Commitment)
				}
				reg := f.log.At(rec.LedgerIndex).Body.(*ledger.RecordRegistered)
				if reg.RecordID != rec.ID || reg.Commitment != rec.Commitment || reg.Size != int64(tc.size) {
					t.Errorf("registration %+v for record %+v", reg, rec)
				}
				for _, read := range []func(*testing.T, *records.Vault, string) (records.Record, []byte, error){
					readAllStream,
					func(t *testing.T, v *records.Vault, id string) (records.Record, []byte, error) {
						return v.Read(t.Context(), id, nil)
					},
				} {
					got, b, err := read(t, f.vault, rec.ID)
					if err != nil || !bytes.Equal(b, content) || got.ID != rec.ID {
						t.Fatalf("read back %d bytes (want %d), err %v", len(b), tc.size, err)
					}
				}
				if containsAny(rawDump(t, db), content[:min(64, len(content))]) && tc.size >= 16 {
					t.Error("the database holds plaintext")
				}
			})
		}
		var rows []struct {
			Seq int
			N   int
		}
		if err := db.Raw("SELECT seq, length(data) AS n FROM record_pieces").Scan(&rows).Error; err != nil {
			t.Fatal(err)
		}
		if len(rows) != 6 {
			t.Errorf("%d piece rows, want 6", len(rows))
		}
		for _, r := range rows {
			if r.N > records.PieceSize || r.N == 0 {
				t.Errorf("piece %d has %d bytes", r.Seq, r.N)
			}
		}
	})
}

// watchedReader is content that, once `at` bytes of it were read,
// calls check once (with the content half sent).
type watchedReader struct {
	r     io.Reader
	read  int
	at    int
	check func()
}

func (w *watchedReader) Read(p []byte) (int, error) {
	if w.check != nil && w.read >= w.at {
		w.check()
		w.check = nil
	}
	n, err := w.r.Read(p)
	w.read += n
	return n, err
}

// TestPutStreamStoresAsItReads: pieces are in the database while the
// upload is still being read, and the record is invisible until it is
// registered.
func TestPutStreamStoresAsItReads(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, records.Options{})
		content := randomContent(t, 12<<20)
		var during int64 = -1
		var listed int
		src := &watchedReader{r: bytes.NewReader(content), at: 10 << 20, check: func() {
			during = f.pieceRows(t)
			list, err := f.vault.ListByPatient(t.Context(), "patient-123")
			if err != nil {
				t.Error(err)
			}
			listed = len(list)
		}}
		rec, err := f.vault.PutStream(t.Context(), streamed(), src)
		if err != nil {
			t.Fatal(err)
		}
		if during < 4 {
			t.Errorf("%d pieces stored after 10 MiB of 12 were read, want at least 4", during)
		}
		if listed != 0 {
			t.Errorf("the record was listed during its upload")
		}
		if _, b, err := readAllStream(t, f.vault, rec.ID); err != nil || !bytes.Equal(b, content) {
			t.Fatalf("read back: %v", err)
		}
	})
}

// failingReader returns its content, then err.
type failingReader struct {
	r   io.Reader
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if errors.Is(err, io.EOF) {
		return n, f.err
	}
	return n, err
}

// TestPutStreamRefusals: every refused streamed upload keeps nothing:
// no record row, no piece, no ledger entry.
func TestPutStreamRefusals(t *testing.T) {
	errBody := errors.New("client went away")
	big := randomContent(t, 7<<20)
	digest := sha256.Sum256(big)
	wrongDigest := sha256.Sum256([]byte("something else"))
	tests := []struct {
		name    string
		opts    records.Options
		req     func() records.PutRequest
		content func() io.Reader
		ctx     func(t *testing.T) context.Context
		want    error
	}{
		{name: "empty", content: func() io.Reader { return bytes.NewReader(nil) }, want: records.ErrInvalid},
		{name: "over the stream limit", opts: records.Options{MaxSize: 1 << 20, MaxStreamSize: 6 << 20}, content: func() io.Reader { return bytes.NewReader(big) }, want: records.ErrTooLarge},
		{name: "digest differs (pieces)", req: func() records.PutRequest { r := streamed(); r.ContentSHA256 = wrongDigest[:]; return r }, content: func() io.Reader { return bytes.NewReader(big) }, want: records.ErrInvalid},
		{name: "digest differs (small)", req: func() records.PutRequest { r := streamed(); r.ContentSHA256 = digest[:]; return r }, content: func() io.Reader { return strings.NewReader("%PDF small") }, want: records.ErrInvalid},
		{name: "digest of the wrong size", req: func() records.PutRequest { r := streamed(); r.ContentSHA256 = digest[:16]; return r }, content: func() io.Reader { return bytes.NewReader(big) }, want: records.ErrInvalid},
		{name: "body fails midway", content: func() io.Reader { return &failingReader{r: bytes.NewReader(big), err: errBody} }, want: errBody},
		{name: "body fails in the head", content: func() io.Reader { return &failingReader{r: strings.NewReader("%PDF"), err: errBody} }, want: errBody},
		{name: "bad category", req: func() records.PutRequest { r := streamed(); r.Category = "gossip"; return r }, content: func() io.Reader { return bytes.NewReader(big) }, want: records.ErrInvalid},
		{name: "FHIR JSON above MaxSize", opts: records.Options{MaxSize: 1 << 20},
			req:     func() records.PutRequest { r := streamed(); r.ContentType = records.FHIRContentType; return r },
			content: func() io.Reader { return bytes.NewReader(big) }, want: records.ErrTooLarge},
		{name: "invalid FHIR JSON", req: func() records.PutRequest { r := streamed(); r.ContentType = records.FHIRContentType; return r },
			content: func() io.Reader { return strings.NewReader(`{"resourceType":"Nonsense"}`) }, want: records.ErrInvalid},
		{name: "caller gone midway", ctx: func(t *testing.T) context.Context {
			ctx, cancel := context.WithCancel(t.Context())
			t.Cleanup(cancel)
			return ctx
		}, want: context.Canceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
				f := newFixture(t, db, tc.opts)
				ctx := t.Context()
				req := streamed()
				if tc.req != nil {
					req = tc.req()
				}
				var content io.Reader
				if tc.ctx != nil {
					c := tc.ctx(t)
					ctx = c
					cancel := context.CancelFunc(nil)
					ctx, cancel = context.WithCancel(c)
					// Cancelled once 6 MiB were read: pieces are stored.
					content = &watchedReader{r: bytes.NewReader(big), at: 6 << 20, check: cancel}
				} else {
					content = tc.content()
				}
				before := len(f.log.Entries())
				_, err := f.vault.PutStream(ctx, req, content)
				if !errors.Is(err, tc.want) {
					t.Fatalf("err = %v, want %v", err, tc.want)
				}
				if n, p := f.count(t), f.pieceRows(t); n != 0 || p != 0 {
					t.Errorf("%d records and %d pieces kept", n, p)
				}
				if after := len(f.log.Entries()); after != before {
					t.Errorf("%d entries appended", after-before)
				}
			})
		})
	}
}

// TestStreamedReadInline: a streamed record larger than MaxSize is read
// with ReadStream only; Read says why after its authorization step.
func TestStreamedReadInline(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, records.Options{MaxSize: 1 << 20})
		content := randomContent(t, 2<<20)
		rec, err := f.vault.PutStream(t.Context(), streamed(), bytes.NewReader(content))
		if err != nil {
			t.Fatal(err)
		}
		authorized := 0
		_, _, err = f.vault.Read(t.Context(), rec.ID, func(records.Record) error { authorized++; return nil })
		if !errors.Is(err, records.ErrInlineTooLarge) || authorized != 1 {
			t.Errorf("Read: %v after %d authorizations, want ErrInlineTooLarge after 1", err, authorized)
		}
		denied := errors.New("denied")
		if _, _, err := f.vault.ReadStream(t.Context(), rec.ID, func(records.Record) error { return denied }); err != denied {
			t.Errorf("ReadStream denied: %v", err)
		}
		if _, b, err := readAllStream(t, f.vault, rec.ID); err != nil || !bytes.Equal(b, content) {
			t.Errorf("ReadStream: %v", err)
		}
	})
}

// TestStreamedTamper: pieces swapped, dropped, cut or altered in the
// database never read back as content: both reads fail with ErrDecrypt.
func TestStreamedTamper(t *testing.T) {
	tampers := []struct {
		name string
		sql  []string
	}{
		{"pieces swapped", []string{
			"UPDATE record_pieces SET seq = 100 WHERE seq = 0",
			"UPDATE record_pieces SET seq = 0 WHERE seq = 1",
			"UPDATE record_pieces SET seq = 1 WHERE seq = 100"}},
		{"last piece dropped", []string{"DELETE FROM record_pieces WHERE seq = 2", "UPDATE records SET pieces = 2 WHERE pieces = 3"}},
		{"a middle piece dropped", []string{"DELETE FROM record_pieces WHERE seq = 1", "UPDATE record_pieces SET seq = 1 WHERE seq = 2", "UPDATE records SET pieces = 2 WHERE pieces = 3"}},
		{"piece altered", []string{"UPDATE record_pieces SET data = ? WHERE seq = 1"}},
	}
	for _, tc := range tampers {
		t.Run(tc.name, func(t *testing.T) {
			databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
				f := newFixture(t, db, records.Options{})
				content := randomContent(t, 2*records.PieceSize)
				rec, err := f.vault.PutStream(t.Context(), streamed(), bytes.NewReader(content))
				if err != nil {
					t.Fatal(err)
				}
				for _, q := range tc.sql {
					if strings.Contains(q, "?") {
						f.exec(t, q, randomContent(t, records.PieceSize))
					} else {
						f.exec(t, q)
					}
				}
				if _, b, err := readAllStream(t, f.vault, rec.ID); !errors.Is(err, records.ErrDecrypt) {
					t.Errorf("ReadStream: %d bytes, err %v, want ErrDecrypt", len(b), err)
				}
				if _, b, err := f.vault.Read(t.Context(), rec.ID, nil); !errors.Is(err, records.ErrDecrypt) || b != nil {
					t.Errorf("Read: %d bytes, err %v, want ErrDecrypt", len(b), err)
				}
			})
		})
	}
}

// TestStreamedShred: shredding a streamed record deletes its pieces.
func TestStreamedShred(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, records.Options{})
		content := randomContent(t, 3<<20)
		rec, err := f.vault.PutStream(t.Context(), streamed(), bytes.NewReader(content))
		if err != nil {
			t.Fatal(err)
		}
		// A read under way when the record is shredded.
		_, body, err := f.vault.ReadStream(t.Context(), rec.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer body.Close()
		if _, err := io.ReadFull(body, make([]byte, 1000)); err != nil {
			t.Fatal(err)
		}
		if _, err := f.vault.Shred(t.Context(), "hosp-a", rec.ID); err != nil {
			t.Fatal(err)
		}
		if n := f.pieceRows(t); n != 0 {
			t.Errorf("%d pieces left after the shred", n)
		}
		if _, err := io.ReadAll(body); !errors.Is(err, records.ErrNotFound) {
			t.Errorf("the read under way went on: %v, want ErrNotFound", err)
		}
		if _, _, err := readAllStream(t, f.vault, rec.ID); !errors.Is(err, records.ErrNotFound) {
			t.Errorf("ReadStream after the shred: %v", err)
		}
		if containsAny(rawDump(t, db), content[1<<20:(1<<20)+64]) {
			t.Error("plaintext in the database")
		}
	})
}

// TestStreamedOutcomeUnknown: a streamed upload whose registration's
// outcome is unknown stays pending, finished; repeating it with the same
// ID submits the same registration without reading the content again.
// An upload cut off by the end of its process (unfinished) is started
// afresh by a repeat, and deleted by Recover once older than the pending
// timeout, even when the ledger may commit late.
func TestStreamedOutcomeUnknown(t *testing.T) {
	t.Run("retry", func(t *testing.T) { streamedRetry(t) })
	t.Run("recover", func(t *testing.T) { streamedRecover(t) })
}

func streamedRetry(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, records.Options{})
		ctx := t.Context()
		content := randomContent(t, 2<<20)
		req := streamed()
		req.ID = uuid.NewString()
		f.log.Fail = func(ledger.Entry) error { return ledger.ErrUnavailable }
		if _, err := f.vault.PutStream(ctx, req, bytes.NewReader(content)); !errors.Is(err, ledger.ErrUnavailable) {
			t.Fatalf("err = %v, want ErrUnavailable", err)
		}
		kept, err := f.store.Meta(ctx, req.ID)
		if err != nil || !kept.Pending || kept.Commitment == "" || kept.Pieces == 0 {
			t.Fatalf("kept %+v, %v: want pending and finished", kept, err)
		}
		f.log.Fail = nil
		rec, err := f.vault.PutStream(ctx, req, &failingReader{r: strings.NewReader(""), err: errors.New("read again")})
		if err != nil {
			t.Fatalf("repeat: %v", err)
		}
		if rec.Commitment != kept.Commitment {
			t.Errorf("the repeat registered commitment %s, want %s", rec.Commitment, kept.Commitment)
		}
		if _, b, err := readAllStream(t, f.vault, rec.ID); err != nil || !bytes.Equal(b, content) {
			t.Fatalf("read back: %v", err)
		}
	})
}

func streamedRecover(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, records.Options{PendingTimeout: time.Hour, LateCommits: true})
		ctx := t.Context()
		now := f.clock.Now()
		unfinished := func(age time.Duration) string {
			id := uuid.NewString()
			err := f.store.Create(ctx, records.Stored{
				Record:  records.Record{ID: id, Holder: "hosp-a", Patient: "ps_x", Category: records.CategoryImaging, ContentType: "application/pdf", KeyVersion: 1, CreatedAt: now.Add(-age)},
				Format:  records.FormatStream,
				Pending: true,
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := f.store.AppendPieces(ctx, id, 0, [][]byte{[]byte("sealed bytes")}); err != nil {
				t.Fatal(err)
			}
			return id
		}
		stale, fresh := unfinished(2*time.Hour), unfinished(time.Minute)
		st, err := f.vault.Recover(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.DeletedUnfinished != 1 || st.DeletedPending != 0 {
			t.Errorf("recover: %+v, want 1 unfinished upload deleted", st)
		}
		if _, err := f.store.Meta(ctx, stale); !errors.Is(err, records.ErrNotFound) {
			t.Errorf("stale unfinished upload: %v", err)
		}
		if n := f.pieceRows(t); n != 1 {
			t.Errorf("%d pieces left, want the fresh upload's 1", n)
		}
		// A repeat of the fresh one (its process ended) uploads afresh.
		content := randomContent(t, 2<<20)
		req := streamed()
		req.ID = fresh
		rec, err := f.vault.PutStream(ctx, req, bytes.NewReader(content))
		if err != nil {
			t.Fatal(err)
		}
		if _, b, err := readAllStream(t, f.vault, rec.ID); err != nil || !bytes.Equal(b, content) {
			t.Fatalf("read back: %v", err)
		}
	})
}

// BenchmarkStream: a 64 MiB record through the vault on SQLite, streamed
// in (PutStream) and out (ReadStream), and the same record read inline
// (Read) for comparison. B/op shows what each allocates: streamed, no
// buffer of the record's size.
func BenchmarkStream(b *testing.B) {
	const size = 64 << 20
	ctx := b.Context()
	v := benchVault(b, records.Options{MaxSize: 2 * size})
	content := randomContent(b, size)
	var id string
	b.Run("PutStream/64MiB", func(b *testing.B) {
		b.SetBytes(size)
		b.ReportAllocs()
		for b.Loop() {
			rec, err := v.PutStream(ctx, streamed(), bytes.NewReader(content))
			if err != nil {
				b.Fatal(err)
			}
			id = rec.ID
		}
	})
	b.Run("ReadStream/64MiB", func(b *testing.B) {
		b.SetBytes(size)
		b.ReportAllocs()
		for b.Loop() {
			_, body, err := v.ReadStream(ctx, id, nil)
			if err != nil {
				b.Fatal(err)
			}
			if n, err := io.Copy(io.Discard, body); err != nil || n != size {
				b.Fatalf("read %d bytes: %v", n, err)
			}
			body.Close()
		}
	})
	b.Run("Read/64MiB", func(b *testing.B) {
		b.SetBytes(size)
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := v.Read(ctx, id, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestStreamedConcurrent: streamed uploads, inline uploads, streamed
// reads and shreddings at once all succeed, and each streamed record
// reads back as it went in.
func TestStreamedConcurrent(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db, records.Options{})
		const workers = 4
		contents := make([][]byte, workers)
		for i := range contents {
			contents[i] = randomContent(t, 5<<20+i)
		}
		// Streamed records to read and to shred while the uploads run.
		readable, err := f.vault.PutStream(t.Context(), streamed(), bytes.NewReader(contents[0]))
		if err != nil {
			t.Fatal(err)
		}
		doomed, err := f.vault.PutStream(t.Context(), streamed(), bytes.NewReader(contents[1]))
		if err != nil {
			t.Fatal(err)
		}
		ids := make([]string, workers)
		errs := make(chan error, 3*workers+1)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				r, err := f.vault.PutStream(t.Context(), streamed(), bytes.NewReader(contents[w]))
				if err != nil {
					errs <- fmt.Errorf("streamed upload %d: %w", w, err)
					return
				}
				ids[w] = r.ID
			})
			wg.Go(func() {
				if _, err := f.vault.Put(t.Context(), observation(fmt.Sprint(w))); err != nil {
					errs <- fmt.Errorf("inline upload %d: %w", w, err)
				}
			})
			wg.Go(func() {
				if _, b, err := readAllStream(t, f.vault, readable.ID); err != nil || !bytes.Equal(b, contents[0]) {
					errs <- fmt.Errorf("streamed read %d: %d bytes, %v", w, len(b), err)
				}
			})
		}
		wg.Go(func() {
			if _, err := f.vault.Shred(t.Context(), "hosp-a", doomed.ID); err != nil {
				errs <- fmt.Errorf("shred: %w", err)
			}
		})
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		for w, id := range ids {
			if id == "" {
				continue
			}
			if _, b, err := readAllStream(t, f.vault, id); err != nil || !bytes.Equal(b, contents[w]) {
				t.Errorf("record %d reads back %d bytes, %v", w, len(b), err)
			}
		}
		var left int64
		if err := db.Table("record_pieces").Where("record_id = ?", doomed.ID).Count(&left).Error; err != nil || left != 0 {
			t.Errorf("%d pieces of the shredded record left (%v)", left, err)
		}
	})
}
