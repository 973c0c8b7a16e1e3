package records

import (
	"crypto/rand"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPUThroughput reports MB per second of this process's CPU time
// (the garbage collector's included) since cpu0: on a shared machine,
// wall-clock MB/s says more about the neighbours than about the code.
func reportCPUThroughput(b *testing.B, n int, cpu0 time.Duration) {
	if d := cpuTime() - cpu0; d > 0 {
		b.ReportMetric(float64(n)*float64(b.N)/1e6/d.Seconds(), "MB/cpu-s")
	}
}

var benchSizes = []struct {
	name string
	n    int
}{
	{"1KiB", 1 << 10},
	{"64KiB", 64 << 10},
	{"1MiB", 1 << 20},
	{"16MiB", 16 << 20},
}

// BenchmarkEncrypt measures sealing one record into a fresh buffer (what
// Vault.Put did before it sealed into a pooled one; see
// BenchmarkSealPooled): a fresh data key, AES-256-GCM over the content,
// and wrapping the data key under the KEK.
func BenchmarkEncrypt(b *testing.B) {
	benchSeal(b, func(kek KEK, _ int) func([]byte) error {
		return func(pt []byte) error {
			_, err := seal(kek, testBinding(), pt)
			return err
		}
	})
}

// BenchmarkSealPooled measures sealing one record as Vault.Put does: a
// fresh data key, AES-256-GCM over the content and the data key wrapped
// under the KEK, the envelope written into a buffer reused from one
// record to the next (the vault's envelope pool), so no buffer of the
// content's size is allocated per record. bench/peers compares it with
// openssl.
func BenchmarkSealPooled(b *testing.B) {
	benchSeal(b, func(kek KEK, n int) func([]byte) error {
		bind := testBinding()
		buf := make([]byte, 0, SealedSize(bind.format, n))
		return func(pt []byte) error {
			s, err := sealAppend(buf[:0], kek, bind, pt)
			buf = s.ciphertext
			return err
		}
	})
}

// benchSeal runs a sealing benchmark at each of benchSizes: newSeal
// returns, for the KEK and a size, the operation timed on random content
// of that size (its setup is not timed), reported in MB/s and MB per
// CPU-second.
func benchSeal(b *testing.B, newSeal func(kek KEK, n int) func(pt []byte) error) {
	kek := testKEK(b, "hosp-a", 1)
	for _, sz := range benchSizes {
		b.Run(sz.name, func(b *testing.B) {
			pt := make([]byte, sz.n)
			if _, err := rand.Read(pt); err != nil {
				b.Fatal(err)
			}
			op := newSeal(kek, sz.n)
			b.SetBytes(int64(sz.n))
			b.ReportAllocs()
			cpu0 := cpuTime()
			for b.Loop() {
				if err := op(pt); err != nil {
					b.Fatal(err)
				}
			}
			reportCPUThroughput(b, sz.n, cpu0)
		})
	}
}

// BenchmarkDecrypt measures opening one record into a fresh buffer (see
// BenchmarkOpenContent for a reused one): unwrapping the data key and
// AES-256-GCM authentication and decryption of the content.
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
			cpu0 := cpuTime()
			for b.Loop() {
				if _, err := open(kek, testBinding(), s.wrappedKey, s.ciphertext); err != nil {
					b.Fatal(err)
				}
			}
			reportCPUThroughput(b, sz.n, cpu0)
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
