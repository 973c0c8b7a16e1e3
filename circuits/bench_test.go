package circuits_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/consensys/gnark/backend/groth16"

	"github.com/healthgw/healthgw/circuits"
)

// Benchmarks per statement (run one at a time on a shared machine):
//
//	go test ./circuits -run '^$' -bench . -benchtime 10x
//
// BenchmarkSetup reports the single-party setup time per op with the
// circuit size and key sizes; BenchmarkProve the proving time (from a
// loaded key) with the proof size; BenchmarkVerify the verification time.
// Prove and Verify also report cpu-ms/op, the process CPU time per op
// (all threads): wall time on a machine shared with other work varies with
// the load, the CPU time much less. The prover uses every CPU
// (GOMAXPROCS): gnark's solver and MSMs run in parallel.

func BenchmarkSetup(b *testing.B) {
	for _, s := range circuits.Statements() {
		b.Run(string(s), func(b *testing.B) {
			ccs, err := circuits.Compile(s)
			if err != nil {
				b.Fatal(err)
			}
			var pk groth16.ProvingKey
			var vk groth16.VerifyingKey
			for b.Loop() {
				if pk, vk, err = groth16.Setup(ccs); err != nil {
					b.Fatal(err)
				}
			}
			var pkb, vkb bytes.Buffer
			if _, err := pk.WriteTo(&pkb); err != nil {
				b.Fatal(err)
			}
			if _, err := vk.WriteTo(&vkb); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(ccs.GetNbConstraints()), "constraints")
			b.ReportMetric(float64(pkb.Len()), "pk-bytes")
			b.ReportMetric(float64(vkb.Len()), "vk-bytes")
		})
	}
}

func BenchmarkProve(b *testing.B) {
	for _, s := range circuits.Statements() {
		b.Run(string(s), func(b *testing.B) {
			p, ch, f := proofFor(b, s)
			pr := prover(b, s)
			var err error
			cpu := startCPU()
			for b.Loop() {
				if p, err = pr.Prove(f.Credential, f.Secret, ch); err != nil {
					b.Fatal(err)
				}
			}
			cpu.report(b)
			b.ReportMetric(float64(len(p.Bytes)), "proof-bytes")
		})
	}
}

func BenchmarkVerify(b *testing.B) {
	v := verifier(b)
	for _, s := range circuits.Statements() {
		b.Run(string(s), func(b *testing.B) {
			p, ch, _ := proofFor(b, s)
			pub := p.PublicFor(ch)
			cpu := startCPU()
			for b.Loop() {
				if err := v.Verify(s, pub, p.Bytes); err != nil {
					b.Fatal(err)
				}
			}
			cpu.report(b)
		})
	}
}

type cpuMeter struct {
	start time.Duration
	ok    bool
}

func startCPU() cpuMeter {
	d, ok := processCPU()
	return cpuMeter{start: d, ok: ok}
}

func (m cpuMeter) report(b *testing.B) {
	if d, ok := processCPU(); ok && m.ok && b.N > 0 {
		b.ReportMetric(float64(d-m.start)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
	}
}
