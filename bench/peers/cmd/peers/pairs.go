package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/healthgw/healthgw/bench/peers/harness"
)

// pair interleaves h and p for the configured rounds and adds the row.
func (s *suite) pair(measure, peer, unit string, h, p harness.Measure) {
	s.logf("%s: %d rounds", measure, s.cfg.Rounds)
	r, err := harness.Interleave(s.cfg.Rounds, h, p)
	if err != nil {
		s.fail(measure, err)
		return
	}
	row, err := harness.RowOf(measure, peer, unit, r)
	if err != nil {
		s.fail(measure, err)
		return
	}
	s.logf("%s: %s vs %s: %s", measure, row.Healthgw, row.Peer, harness.FormatRatio(*row.Ratio))
	s.rows = append(s.rows, row)
}

// appendPair interleaves the append measures h and p and adds two rows:
// entries/s, and entries per CPU-second of the process (CPU per entry
// moves less than entries/s on a shared machine).
func (s *suite) appendPair(measure, peer string, h, p func(round int) (appendResult, error)) {
	var hc, pc []float64
	wrap := func(f func(int) (appendResult, error), cpus *[]float64) harness.Measure {
		return func(round int) (float64, error) {
			r, err := f(round)
			if err != nil {
				return 0, err
			}
			*cpus = append(*cpus, float64(r.cpu)/float64(time.Microsecond))
			return r.rate, nil
		}
	}
	s.pair(measure, peer, "entries/s", wrap(h, &hc), wrap(p, &pc))
	if len(hc) != s.cfg.Rounds || len(pc) != s.cfg.Rounds {
		return
	}
	ratios, err := harness.Ratios(invert(hc), invert(pc))
	if err != nil {
		return
	}
	rs, _ := harness.Summarize(ratios)
	hs, _ := harness.Summarize(hc)
	ps, _ := harness.Summarize(pc)
	s.rows = append(s.rows, harness.Row{Measure: measure + " (entries per CPU-second)", Ratio: &rs,
		Healthgw: harness.Number(hs.Median) + " µs CPU/entry", Peer: "Tessera " + harness.Number(ps.Median) + " µs CPU/entry"})
}

func (s *suite) appends(ctx context.Context) {
	d := s.cfg.Duration
	const peer = "Tessera POSIX (10 ms batches)"
	s.notes = append(s.notes, "append pairs: both sides run in the suite's process; CPU per entry is the process's user + system time over the window (getrusage) divided by the entries")
	for _, n := range []int{256, 1} {
		measure := fmt.Sprintf("durable appends, %d appender%s, SQLite", n, map[bool]string{true: "s"}[n > 1])
		s.appendPair(measure, peer,
			func(round int) (appendResult, error) {
				return healthgwAppends(ctx, filepath.Join(s.tmp, fmt.Sprintf("append-%d-%d.db", n, round)), n, d)
			},
			func(int) (appendResult, error) { return tesseraAppends(ctx, s.tmp, n, d) })
	}
	const pg = "durable appends, 256 appenders, PostgreSQL"
	if s.cfg.Postgres == "" {
		s.skip(pg, "HEALTHGW_TEST_POSTGRES not set")
		return
	}
	s.appendPair(pg, peer,
		func(int) (appendResult, error) { return healthgwAppends(ctx, s.cfg.Postgres, 256, d) },
		func(int) (appendResult, error) { return tesseraAppends(ctx, s.tmp, 256, d) })
}

func (s *suite) read(ctx context.Context) {
	const measure = "consent-gated read, 64 clients, SQLite"
	dir := filepath.Join(s.tmp, "read")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		s.fail(measure, err)
		return
	}
	bin := filepath.Join(dir, "healthgw")
	s.logf("%s: building healthgw", measure)
	if err := s.goCmd(ctx, "build", "-o", bin, "./cmd/healthgw"); err != nil {
		s.fail(measure, err)
		return
	}
	self, err := os.Executable()
	if err != nil {
		s.fail(measure, err)
		return
	}
	gw, err := startGateway(ctx, bin, filepath.Join(dir, "gw"))
	if err != nil {
		s.fail(measure, err)
		return
	}
	defer gw.stop()
	tok, err := gw.tok(ctx)
	if err != nil {
		s.fail(measure, err)
		return
	}
	alg, err := tokenAlg(tok)
	if err != nil {
		s.fail(measure, err)
		return
	}
	servers := []*server{gw}
	for _, mode := range []string{"audited", "bare"} {
		p, err := startPeer(ctx, self, dir, mode, alg)
		if err != nil {
			s.fail(measure, err)
			return
		}
		defer p.stop()
		servers = append(servers, p)
	}
	s.notes = append(s.notes, fmt.Sprintf("read pair: the gateway is the `healthgw serve` binary (rate limits and the background ZK setup off), driven over loopback HTTP with a real hospital access token (%s); the peers are this program's `peer-server` (gin %s + jwx, a %s token checked every request: signature, iss, aud, exp, scope); server CPU is user + system time of the server process from /proc (10 ms ticks) over the measured window, divided by the reads", alg, "v1.12.0", alg))
	rates := make([][]float64, len(servers))
	cpus := make([][]float64, len(servers))
	s.logf("%s: %d rounds", measure, s.cfg.Rounds)
	for round := range s.cfg.Rounds {
		order := []int{0, 1, 2}
		if round%2 == 1 {
			order = []int{2, 1, 0}
		}
		for _, i := range order {
			r, cpu, err := readRate(ctx, servers[i], s.cfg.Duration)
			if err != nil {
				s.fail(measure, fmt.Errorf("round %d: %w", round, err))
				return
			}
			rates[i] = append(rates[i], r)
			cpus[i] = append(cpus[i], float64(cpu)/float64(time.Millisecond))
		}
	}
	desc := func(i int) string {
		r, _ := harness.Summarize(rates[i])
		c, _ := harness.Summarize(cpus[i])
		return fmt.Sprintf("%s reads/s, %s ms server CPU/read", harness.Number(r.Median), harness.Number(c.Median))
	}
	for i, name := range []string{"", "bare gin + jwx + one durable SQLite insert per request (the audited floor)", "bare gin + jwx, token checked every request"} {
		if i == 0 {
			continue
		}
		m := measure
		if i == 2 {
			m = "same read"
		}
		ratios, err := harness.Ratios(rates[0], rates[i])
		if err != nil {
			s.fail(m, err)
			continue
		}
		rs, _ := harness.Summarize(ratios)
		hdesc := desc(0)
		if i == 2 {
			hdesc = ""
		}
		s.rows = append(s.rows, harness.Row{Measure: m + " (reads/s)", Healthgw: hdesc, Peer: name + ": " + desc(i), Ratio: &rs})
		// CPU per read, as a rate: reads per CPU-second (the peer's CPU
		// per read over healthgw's).
		cr, err := harness.Ratios(invert(cpus[0]), invert(cpus[i]))
		if err == nil {
			cs, err := harness.Summarize(cr)
			if err == nil {
				s.rows = append(s.rows, harness.Row{Measure: m + " (reads per server CPU-second)", Ratio: &cs,
					Note: "peer's server CPU per read over healthgw's"})
			}
		}
	}
	s.logf("%s: healthgw %s", measure, desc(0))
}

func invert(vs []float64) []float64 {
	out := make([]float64, len(vs))
	for i, v := range vs {
		if v > 0 {
			out[i] = 1 / v
		}
	}
	return out
}

func (s *suite) zk(ctx context.Context) {
	const prove, verify = "ZK `age` prove, in-process", "ZK `age` verify, in-process"
	s.logf("zk: healthgw dev setup of the age statement")
	g, err := newGnarkAge(ctx, s.tmp)
	if err != nil {
		s.fail(prove, err)
		return
	}
	d := s.cfg.Duration
	// Without the peer, healthgw's own figures still go in the table.
	alone := func(why string) {
		s.logf("zk: the snarkjs peer cannot run: %s", why)
		for _, m := range []struct {
			measure string
			f       func(time.Duration) (float64, error)
		}{{prove, g.prove}, {verify, g.verify}} {
			var rates []float64
			for range s.cfg.Rounds {
				r, err := m.f(d)
				if err != nil {
					s.fail(m.measure, err)
					return
				}
				rates = append(rates, r)
			}
			hs, _ := harness.Summarize(invert(rates))
			desc := fmt.Sprintf("gnark %s ms", harness.Number(hs.Median*1000))
			if m.measure == prove {
				desc += fmt.Sprintf(", %s constraints", harness.Number(float64(g.constraints)))
			}
			s.rows = append(s.rows, harness.Row{Measure: m.measure, Healthgw: desc, Note: "no peer: " + why})
		}
	}
	if why := nodeTools(s.cfg.ZKDir); why != "" {
		alone(why)
		return
	}
	sj, err := newSnarkjsAge(ctx, s.cfg.ZKDir, filepath.Join(s.cfg.ZKDir, "build"), stderrWriter{s})
	if err != nil {
		alone("setup failed: " + firstLine(err.Error()))
		return
	}
	for _, m := range []struct {
		measure string
		h, p    harness.Measure
	}{
		{prove, func(int) (float64, error) { return g.prove(d) }, func(int) (float64, error) { return sj.prove(ctx, d) }},
		{verify, func(int) (float64, error) { return g.verify(d) }, func(int) (float64, error) { return sj.verify(ctx, d) }},
	} {
		s.logf("%s: %d rounds", m.measure, s.cfg.Rounds)
		r, err := harness.Interleave(s.cfg.Rounds, m.h, m.p)
		if err != nil {
			s.fail(m.measure, err)
			continue
		}
		ratios, err := harness.Ratios(r.Healthgw, r.Peer)
		if err != nil {
			s.fail(m.measure, err)
			continue
		}
		rs, _ := harness.Summarize(ratios)
		hs, _ := harness.Summarize(invert(r.Healthgw))
		ps, _ := harness.Summarize(invert(r.Peer))
		row := harness.Row{Measure: m.measure, Ratio: &rs,
			Healthgw: fmt.Sprintf("gnark %s ms", harness.Number(hs.Median*1000)),
			Peer:     fmt.Sprintf("snarkjs %s ms", harness.Number(ps.Median*1000))}
		if m.measure == prove {
			row.Healthgw += fmt.Sprintf(", %s constraints", harness.Number(float64(g.constraints)))
			row.Peer = fmt.Sprintf("circom2 (--O2) + snarkjs %s ms, %s constraints", harness.Number(ps.Median*1000), harness.Number(float64(sj.constraints)))
		}
		s.logf("%s: %s vs %s: %s", m.measure, row.Healthgw, row.Peer, harness.FormatRatio(rs))
		s.rows = append(s.rows, row)
	}
	s.notes = append(s.notes, fmt.Sprintf("ZK pair: healthgw's age statement (circuits.Age, gnark Groth16 on BN254, dev setup) in-process; the peer is bench/peers/zk/age.circom (circomlib EdDSAPoseidon, Poseidon, comparators) compiled by circom2 and proven by snarkjs in node (fullProve: witness + proof; one warm-up proof outside the timing, node's start and key loading outside it too). The circom statement mirrors healthgw's inputs and checks, but hashes with circomlib's Poseidon (healthgw: Poseidon2) and does not check S < l; constraints: healthgw %d, circom %d", g.constraints, sj.constraints))
}

// stderrWriter sends progress lines to the suite's log.
type stderrWriter struct{ s *suite }

func (w stderrWriter) Write(p []byte) (int, error) {
	w.s.logf("%s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (s *suite) aes(ctx context.Context) {
	const measure = "AES-256-GCM 1 MiB encrypt"
	bin := filepath.Join(s.tmp, "records.test")
	s.logf("%s: building the records test binary", measure)
	if err := s.goCmd(ctx, "test", "-c", "-o", bin, "./records"); err != nil {
		s.fail(measure, err)
		return
	}
	d := s.cfg.Duration
	h := func(int) (float64, error) { return recordsEncrypt(ctx, bin, d) }
	if _, err := exec.LookPath("openssl"); err != nil {
		s.notes = append(s.notes, "AES pair: openssl is not installed; the peer is Go's AES-256-GCM in place")
		s.pair(measure, "Go AES-256-GCM in place", "MB/s", h, func(int) (float64, error) { return goGCMInPlace(d) })
		return
	}
	s.pair(measure+" (records' at-rest seal)", "`openssl speed -evp aes-256-gcm -bytes 1048576`", "MB/s", h,
		func(int) (float64, error) { return opensslSpeed(ctx, d) })
	s.pair(measure+" per CPU-second (records' at-rest seal)", "`openssl speed` (user CPU time)", "MB/CPU-s",
		func(int) (float64, error) { return recordsEncryptCPU(ctx, bin, d) },
		func(int) (float64, error) { return opensslSpeedCPU(ctx, d) })
	s.pair("Go's AES-256-GCM in place (context)", "`openssl speed`", "MB/s",
		func(int) (float64, error) { return goGCMInPlace(d) },
		func(int) (float64, error) { return opensslSpeed(ctx, d) })
	s.notes = append(s.notes, "AES pair: healthgw's side is the records package's own BenchmarkSealPooled/1MiB (the unexported at-rest seal as Vault.Put makes it: fresh data key, AES-256-GCM into a reused buffer, key wrap) run from its compiled test binary, one process a round; openssl speed runs whole seconds. The wall-clock rows divide by elapsed time (openssl -elapsed); the per-CPU-second row divides by the process's CPU time (openssl's default, user time; the Go test process's user + system time, its start included), which a loaded machine disturbs less")
}

// comet appends the PEER lines of `make bench-peers-comet`, when the
// target exists.
func (s *suite) comet(ctx context.Context) {
	const measure = "consortium: CometBFT kvstore pair (`make bench-peers-comet`)"
	probe := exec.CommandContext(ctx, "make", "-n", "bench-peers-comet")
	probe.Dir = s.cfg.Repo
	if err := probe.Run(); err != nil {
		s.skip(measure, "the Makefile has no bench-peers-comet target on this branch")
		return
	}
	s.logf("%s: running", measure)
	cmd := exec.CommandContext(ctx, "make", "--no-print-directory", "bench-peers-comet")
	cmd.Dir = s.cfg.Repo
	cmd.Env = append(os.Environ(), fmt.Sprintf("BENCH_ROUNDS=%d", s.cfg.Rounds), fmt.Sprintf("BENCH_SECONDS=%g", s.cfg.Duration.Seconds()))
	out, err := cmd.CombinedOutput()
	if err != nil {
		s.fail(measure, fmt.Errorf("%w\n%s", err, tail(out, 2000)))
		return
	}
	rows := cometRows(out)
	if len(rows) == 0 {
		s.fail(measure, fmt.Errorf("no PEER lines in its output"))
		return
	}
	s.rows = append(s.rows, rows...)
}

// cometRows turns the "PEER name rest…" lines of out into rows (the
// figures as printed, no ratio of ours).
func cometRows(out []byte) []harness.Row {
	var rows []harness.Row
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "PEER ")
		if !ok {
			continue
		}
		name, figures, _ := strings.Cut(strings.TrimSpace(rest), " ")
		rows = append(rows, harness.Row{Measure: name, Healthgw: strings.TrimSpace(figures), Note: "as printed by make bench-peers-comet"})
	}
	return rows
}
