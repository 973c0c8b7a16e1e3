package records

import (
	"crypto/rand"
	"testing"
)

var benchSizes = []struct {
	name string
	n    int
}{
	{"1KiB", 1 << 10},
	{"64KiB", 64 << 10},
	{"1MiB", 1 << 20},
	{"16MiB", 16 << 20},
}

// BenchmarkEncrypt measures sealing one record: a fresh data key,
// AES-256-GCM over the content, and wrapping the data key under the KEK.
func BenchmarkEncrypt(b *testing.B) {
	kek := testKEK(b, "hosp-a", 1)
	for _, sz := range benchSizes {
		b.Run(sz.name, func(b *testing.B) {
			pt := make([]byte, sz.n)
			if _, err := rand.Read(pt); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(sz.n))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := seal(kek, testBinding(), pt); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecrypt measures opening one record: unwrapping the data key
// and AES-256-GCM authentication and decryption of the content.
func BenchmarkDecrypt(b *testing.B) {
	kek := testKEK(b, "hosp-a", 1)
	for _, sz := range benchSizes {
		b.Run(sz.name, func(b *testing.B) {
			pt := make([]byte, sz.n)
			if _, err := rand.Read(pt); err != nil {
				b.Fatal(err)
			}
			s, err := seal(kek, testBinding(), pt)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(sz.n))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := open(kek, testBinding(), s.wrappedKey, s.ciphertext); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRewrap measures re-wrapping one data key (rotation's unit of
// work), reported as keys per second.
func BenchmarkRewrap(b *testing.B) {
	v1 := testKEK(b, "hosp-a", 1)
	v2 := testKEK(b, "hosp-a", 2)
	s, err := seal(v1, testBinding(), []byte("x"))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := rewrap(v1, v2, FormatVersion, testBinding().id, s.wrappedKey); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "keys/s")
}
