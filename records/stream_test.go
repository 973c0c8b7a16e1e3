package records

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

func streamRecord() Record {
	b := testBinding()
	return Record{ID: b.id, Holder: b.holder, Patient: b.patient, Category: Category(b.category),
		ContentType: b.contentType, ResourceType: b.resourceType}
}

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

var streamSizes = []int{0, 1, StreamChunkSize - 1, StreamChunkSize, StreamChunkSize + 1, 3 * StreamChunkSize, 1<<20 + 5}

func TestSealContentRoundTrip(t *testing.T) {
	kek := testKEK(t, "hosp-a", 1)
	rec := streamRecord()
	for _, format := range []int{FormatVersion, FormatStream} {
		for _, n := range streamSizes {
			pt := randomBytes(t, n)
			s, err := SealContent(nil, kek, rec, format, pt)
			if err != nil {
				t.Fatalf("format %d, %d bytes: SealContent: %v", format, n, err)
			}
			if got, want := len(s.Ciphertext), SealedSize(format, n); got != want {
				t.Errorf("format %d, %d bytes: envelope is %d bytes, SealedSize says %d", format, n, got, want)
			}
			if got, err := plaintextSize(format, len(s.Ciphertext)); err != nil || got != n {
				t.Errorf("format %d, %d bytes: plaintextSize = %d, %v", format, n, got, err)
			}
			got, err := OpenContent(nil, kek, rec, s)
			if err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("format %d, %d bytes: OpenContent: %v (equal %v)", format, n, err, bytes.Equal(got, pt))
			}
			inPlace, err := openInPlace(kek, bindingOf(format, rec), s.WrappedKey, bytes.Clone(s.Ciphertext))
			if err != nil || !bytes.Equal(inPlace, pt) {
				t.Fatalf("format %d, %d bytes: openInPlace: %v (equal %v)", format, n, err, bytes.Equal(inPlace, pt))
			}
			if format != FormatStream {
				continue
			}
			// The streaming reader opens what SealContent wrote, read a
			// byte at a time, and the writer's output opens in memory.
			r, err := NewStreamReader(iotest.OneByteReader(bytes.NewReader(s.Ciphertext)), kek, rec, s.WrappedKey)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := io.ReadAll(r); err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("%d bytes: StreamReader: %v (equal %v)", n, err, bytes.Equal(got, pt))
			}
			var env bytes.Buffer
			w, err := NewStreamWriter(&env, kek, rec)
			if err != nil {
				t.Fatal(err)
			}
			for p := pt; len(p) > 0; p = p[min(len(p), 1000):] { // odd write sizes
				if _, err := w.Write(p[:min(len(p), 1000)]); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			wrapped, version := w.WrappedKey()
			if env.Len() != SealedSize(FormatStream, n) || version != 1 {
				t.Errorf("%d bytes: StreamWriter wrote %d bytes (v%d), want %d", n, env.Len(), version, SealedSize(FormatStream, n))
			}
			got, err = OpenContent(nil, kek, rec, SealedContent{Format: FormatStream, Ciphertext: env.Bytes(), WrappedKey: wrapped})
			if err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("%d bytes: OpenContent of StreamWriter's envelope: %v", n, err)
			}
		}
	}
}

// TestSealContentReusesBuffer: sealing into a buffer with the capacity
// writes into it.
func TestSealContentReusesBuffer(t *testing.T) {
	kek := testKEK(t, "hosp-a", 1)
	pt := randomBytes(t, 1<<20)
	for _, format := range []int{FormatVersion, FormatStream} {
		buf := make([]byte, 0, SealedSize(format, len(pt)))
		s, err := SealContent(buf, kek, streamRecord(), format, pt)
		if err != nil {
			t.Fatal(err)
		}
		if &s.Ciphertext[0] != &buf[:1][0] {
			t.Errorf("format %d: SealContent did not seal into the buffer given", format)
		}
		out := make([]byte, 0, len(pt))
		got, err := OpenContent(out, kek, streamRecord(), s)
		if err != nil || &got[0] != &out[:1][0] || !bytes.Equal(got, pt) {
			t.Errorf("format %d: OpenContent did not open into the buffer given (%v)", format, err)
		}
	}
}

// TestOpenLegacyFormat: records written before this code (format 1 by
// crypto/cipher.NewGCMWithRandomNonce) still open.
func TestOpenLegacyFormat(t *testing.T) {
	kek := testKEK(t, "hosp-a", 1)
	b := testBinding()
	dek := randomBytes(t, KeySize)
	block, err := aes.NewCipher(dek)
	if err != nil {
		t.Fatal(err)
	}
	legacy, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		t.Fatal(err)
	}
	pt := randomBytes(t, 100_000)
	ct := legacy.Seal(nil, nil, pt, contentAD(b))
	wrapped := kek.aead.Seal(nil, nil, dek, wrapAD(b.format, kek.org, kek.version, b.id))
	got, err := OpenContent(nil, kek, streamRecord(), SealedContent{Format: FormatVersion, Ciphertext: ct, WrappedKey: wrapped})
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("legacy record: %v", err)
	}
	// And what this code writes in format 1 opens with the legacy AEAD.
	s, err := sealContent(nil, legacy0(t, dek), b, pt)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := legacy.Open(nil, nil, s, contentAD(b)); err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("format 1 written now does not open as before: %v", err)
	}
}

func legacy0(t *testing.T, dek []byte) cipher.AEAD {
	t.Helper()
	g, err := newContentGCM(dek)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// TestStreamRefusesDamage: truncated, reordered, extended or altered
// streamed envelopes, and envelopes read as another record or format,
// are refused, in memory and by the streaming reader (which never
// reports the end of the content).
func TestStreamRefusesDamage(t *testing.T) {
	kek := testKEK(t, "hosp-a", 1)
	rec := streamRecord()
	pt := randomBytes(t, 3*StreamChunkSize+100)
	s, err := SealContent(nil, kek, rec, FormatStream, pt)
	if err != nil {
		t.Fatal(err)
	}
	ct := s.Ciphertext
	chunk := func(i int) []byte { return ct[i*streamChunkSeal : min(len(ct), (i+1)*streamChunkSeal)] }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	flipped := bytes.Clone(ct)
	flipped[StreamChunkSize+7] ^= 1
	other := rec
	other.ID = "another-record"
	tests := []struct {
		name   string
		ct     []byte
		rec    Record
		format int
	}{
		{"last chunk dropped", cat(chunk(0), chunk(1), chunk(2)), rec, FormatStream},
		{"only the first chunk", chunk(0), rec, FormatStream},
		{"cut inside the last chunk", ct[:len(ct)-1], rec, FormatStream},
		{"cut to less than a tag", ct[:3*streamChunkSeal+5], rec, FormatStream},
		{"chunks reordered", cat(chunk(1), chunk(0), chunk(2), chunk(3)), rec, FormatStream},
		{"chunk repeated", cat(chunk(0), chunk(0), chunk(1), chunk(2), chunk(3)), rec, FormatStream},
		{"chunk appended", cat(ct, chunk(0)), rec, FormatStream},
		{"trailing byte", cat(ct, []byte{0}), rec, FormatStream},
		{"bit flipped", flipped, rec, FormatStream},
		{"empty", nil, rec, FormatStream},
		{"another record", ct, other, FormatStream},
		{"read as format 1", ct, rec, FormatVersion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := SealedContent{Format: tt.format, Ciphertext: tt.ct, WrappedKey: s.WrappedKey}
			if got, err := OpenContent(nil, kek, tt.rec, sc); !errors.Is(err, ErrDecrypt) || got != nil {
				t.Errorf("OpenContent = %d bytes, %v; want ErrDecrypt", len(got), err)
			}
			if _, err := openInPlace(kek, bindingOf(tt.format, tt.rec), s.WrappedKey, bytes.Clone(tt.ct)); !errors.Is(err, ErrDecrypt) {
				t.Errorf("openInPlace: %v; want ErrDecrypt", err)
			}
			if tt.format != FormatStream {
				return
			}
			r, err := NewStreamReader(bytes.NewReader(tt.ct), kek, tt.rec, s.WrappedKey)
			if err != nil {
				if !errors.Is(err, ErrDecrypt) {
					t.Errorf("NewStreamReader: %v", err)
				}
				return
			}
			got, err := io.ReadAll(r)
			if !errors.Is(err, ErrDecrypt) {
				t.Errorf("StreamReader read %d bytes and ended with %v; want ErrDecrypt", len(got), err)
			}
			if !bytes.HasPrefix(pt, got) {
				t.Errorf("StreamReader returned content that is not a prefix of the record's")
			}
		})
	}
}

// TestStreamWriterErrors: a failing destination fails the writer, and
// nothing more is written after Close.
func TestStreamWriterErrors(t *testing.T) {
	kek := testKEK(t, "hosp-a", 1)
	w, err := NewStreamWriter(failingWriter{}, kek, streamRecord())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(make([]byte, StreamChunkSize+1)); err == nil {
		t.Error("Write past a chunk to a failing writer succeeded")
	}
	if err := w.Close(); err == nil {
		t.Error("Close after a failed write succeeded")
	}
	var buf bytes.Buffer
	w, err = NewStreamWriter(&buf, kek, streamRecord())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("x")); err == nil {
		t.Error("Write after Close succeeded")
	}
	if _, err := NewStreamWriter(&buf, testKEK(t, "hosp-b", 1), streamRecord()); !errors.Is(err, ErrBadKey) {
		t.Errorf("another organisation's KEK: %v, want ErrBadKey", err)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// BenchmarkSealContent measures sealing into a reused buffer (the
// vault's path), in both formats.
func BenchmarkSealContent(b *testing.B) {
	kek := testKEK(b, "hosp-a", 1)
	for _, format := range []int{FormatVersion, FormatStream} {
		for _, sz := range benchSizes {
			b.Run(formatName(format)+"/"+sz.name, func(b *testing.B) {
				pt := randomBytes(b, sz.n)
				buf := make([]byte, 0, SealedSize(format, sz.n))
				b.SetBytes(int64(sz.n))
				b.ReportAllocs()
				cpu0 := cpuTime()
				for b.Loop() {
					if _, err := SealContent(buf[:0], kek, streamRecord(), format, pt); err != nil {
						b.Fatal(err)
					}
				}
				reportCPUThroughput(b, sz.n, cpu0)
			})
		}
	}
}

// BenchmarkOpenContent measures opening into a reused buffer.
func BenchmarkOpenContent(b *testing.B) {
	kek := testKEK(b, "hosp-a", 1)
	for _, format := range []int{FormatVersion, FormatStream} {
		for _, sz := range benchSizes {
			b.Run(formatName(format)+"/"+sz.name, func(b *testing.B) {
				pt := randomBytes(b, sz.n)
				s, err := SealContent(nil, kek, streamRecord(), format, pt)
				if err != nil {
					b.Fatal(err)
				}
				out := make([]byte, 0, sz.n)
				b.SetBytes(int64(sz.n))
				b.ReportAllocs()
				cpu0 := cpuTime()
				for b.Loop() {
					if _, err := OpenContent(out[:0], kek, streamRecord(), s); err != nil {
						b.Fatal(err)
					}
				}
				reportCPUThroughput(b, sz.n, cpu0)
			})
		}
	}
}

// BenchmarkStreamWriter measures streaming a record's sealing to a
// writer, one chunk buffer in memory.
func BenchmarkStreamWriter(b *testing.B) {
	kek := testKEK(b, "hosp-a", 1)
	for _, sz := range benchSizes[2:] {
		b.Run(sz.name, func(b *testing.B) {
			pt := randomBytes(b, sz.n)
			b.SetBytes(int64(sz.n))
			b.ReportAllocs()
			for b.Loop() {
				w, err := NewStreamWriter(io.Discard, kek, streamRecord())
				if err != nil {
					b.Fatal(err)
				}
				if _, err := w.Write(pt); err != nil {
					b.Fatal(err)
				}
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func formatName(f int) string {
	if f == FormatStream {
		return "stream"
	}
	return "single"
}
