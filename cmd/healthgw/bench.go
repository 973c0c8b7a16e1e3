package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/client"
	"github.com/healthgw/healthgw/internal/truncate"
)

// cmdBench is a load and soak harness: against a running gateway it sets
// up two hospitals, a regulator and a pool of patients, then runs a realistic mix
// of operations at a fixed rate for a fixed time, printing a progress line
// and, at the end, throughput, p50/p99 and errors per operation and the
// target's memory samples. It exits non-zero when any operation failed.
func cmdBench(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "bench")
	cfg := benchConfig{}
	fs.StringVar(&cfg.base, "url", "http://127.0.0.1:8080", "gateway URL")
	fs.Float64Var(&cfg.rate, "rate", 20, "operations a second")
	fs.DurationVar(&cfg.duration, "duration", time.Minute, "how long to run")
	fs.DurationVar(&cfg.progress, "progress", 10*time.Second, "progress line (and memory sample) interval")
	fs.IntVar(&cfg.concurrency, "concurrency", 16, "operations in flight at most; a tick finding none free counts as overloaded")
	fs.IntVar(&cfg.pid, "pid", 0, "the gateway's process ID, to sample its RSS from /proc (default: process_resident_memory_bytes from /metrics)")
	fs.IntVar(&cfg.seed, "seed-records", 20, "records uploaded before the run, for gated reads")
	fs.IntVar(&cfg.patients, "patients", 50, "patients the operations are spread over (each with a consent for the gated reads), so that no patient's record list grows with the length of the run")
	cfg.sf.register(fs)
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	switch {
	case cfg.rate <= 0 || cfg.rate > 10000:
		return errors.New("bench: --rate must be between 0 and 10000 operations a second")
	case cfg.duration <= 0:
		return errors.New("bench: --duration must be positive")
	case cfg.concurrency < 1:
		return errors.New("bench: --concurrency must be at least 1")
	case cfg.progress <= 0:
		return errors.New("bench: --progress must be positive")
	case cfg.patients < 1 || cfg.patients > 10000:
		return errors.New("bench: --patients must be between 1 and 10000")
	}
	cfg.base = strings.TrimRight(cfg.base, "/")
	b := &bench{cfg: cfg, e: e, client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: cfg.concurrency}}}
	sum, err := b.run(ctx)
	if err != nil {
		return err
	}
	sum.print(e.stdout)
	if sum.errors > 0 {
		return fmt.Errorf("bench: %d of %d operations failed", sum.errors, sum.total)
	}
	return nil
}

type benchConfig struct {
	base        string
	rate        float64
	duration    time.Duration
	progress    time.Duration
	concurrency int
	pid         int
	seed        int
	patients    int
	sf          storeFlags
}

// Operations of the mix, with their weights.
var benchMix = []struct {
	name   string
	weight int
}{
	{"token", 5},       // POST /oauth2/token (client assertion exchange)
	{"upload", 15},     // POST /v1/records
	{"consent", 10},    // POST /v1/consents, then the next one revokes it
	{"read", 30},       // GET /v1/records/{id}?purpose=TREAT, consent-gated
	{"listing", 15},    // GET /v1/patients/{p}/records
	{"audit", 10},      // GET /v1/audit/events (regulator)
	{"access-log", 10}, // GET /v1/me/access-log (patient)
	{"checkpoint", 5},  // GET /v1/ledger/checkpoint
}

type bench struct {
	cfg    benchConfig
	e      *env
	client *http.Client
	c      *client.Client

	patients []string
	idp      *auth.DevIdP
	keys     map[string]jwk.Key
	mu       sync.Mutex
	tokens   map[string]benchToken
	records  []string
	pending  []pendingConsent // granted consents to revoke next

	stats map[string]*opStats
	mix   mixer
}

type pendingConsent struct{ patient, id string }

type benchToken struct {
	token string
	at    time.Time
}

type opStats struct {
	mu        sync.Mutex
	latencies []time.Duration
	errors    int
	firstErrs []string
}

func (s *opStats) add(d time.Duration, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latencies = append(s.latencies, d)
	if err != nil {
		s.errors++
		if len(s.firstErrs) < 3 {
			s.firstErrs = append(s.firstErrs, err.Error())
		}
	}
}

const (
	benchHospA = "bench-hosp-a"
	benchHospB = "bench-hosp-b"
	benchReg   = "bench-regulator"
)

// setup registers the orgs (through the data directory, as `org keygen`
// does) and seeds records and the consent the reads run under.
func (b *bench) setup(ctx context.Context) error {
	var suffix [3]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		return err
	}
	run := hex.EncodeToString(suffix[:])
	b.patients = make([]string, b.cfg.patients)
	for i := range b.patients {
		b.patients[i] = fmt.Sprintf("bench-patient-%s-%d", run, i)
	}
	b.c = client.New(b.cfg.base, b.client)
	dir, err := os.MkdirTemp("", "healthgw-bench-keys-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	b.keys, b.tokens = map[string]jwk.Key{}, map[string]benchToken{}
	for _, o := range []auth.Org{
		{ID: benchHospA, Name: "Bench Hospital A", Kind: auth.KindHospital},
		{ID: benchHospB, Name: "Bench Hospital B", Kind: auth.KindHospital},
		{ID: benchReg, Name: "Bench Regulator", Kind: auth.KindRegulator},
	} {
		tok, err := b.orgToken(ctx, dir, o)
		if err != nil {
			return fmt.Errorf("bench: register %s: %w", o.ID, err)
		}
		key, err := auth.ReadPrivateKey(filepath.Join(dir, o.ID+".jwk"))
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		b.keys[o.ID], b.tokens[o.ID] = key, benchToken{tok, time.Now()}
	}
	if b.idp, err = auth.LoadOrCreateDevIdP(auth.DevIdPKeyPath(b.cfg.sf.data)); err != nil {
		return err
	}
	for i := range b.cfg.seed {
		if err := b.upload(ctx, b.patients[i%len(b.patients)]); err != nil {
			return fmt.Errorf("bench: seed records: %w", err)
		}
	}
	// Every patient lets hospital B read their labs, so that every gated
	// read of a record of the mix is permitted.
	grant := map[string]any{"grantee": map[string]string{"org": benchHospB}, "categories": []string{"labs"}, "purposes": []string{"TREAT"}}
	for _, p := range b.patients {
		ptok, err := b.patientToken(p)
		if err != nil {
			return err
		}
		if err := b.c.Do(ctx, "POST", "/v1/consents", ptok, grant, http.StatusCreated, nil); err != nil {
			return fmt.Errorf("bench: consent of %s: %w", p, err)
		}
	}
	return nil
}

func (b *bench) patient() string { return b.patients[mrand.IntN(len(b.patients))] }

func (b *bench) patientToken(patient string) (string, error) {
	return b.idp.Mint(patient, b.cfg.base, time.Now(), 10*time.Minute)
}

// token returns a current access token of org, exchanging a fresh client
// assertion when the one held is older than three minutes.
func (b *bench) token(ctx context.Context, org string) (string, error) {
	b.mu.Lock()
	t := b.tokens[org]
	b.mu.Unlock()
	if time.Since(t.at) < 3*time.Minute {
		return t.token, nil
	}
	return b.exchange(ctx, org)
}

func (b *bench) exchange(ctx context.Context, org string) (string, error) {
	tok, err := b.exchangeKey(ctx, b.keys[org], org)
	if err != nil {
		return "", err
	}
	b.mu.Lock()
	b.tokens[org] = benchToken{tok, time.Now()}
	b.mu.Unlock()
	return tok, nil
}

func (b *bench) upload(ctx context.Context, patient string) error {
	tok, err := b.token(ctx, benchHospA)
	if err != nil {
		return err
	}
	obs := json.RawMessage(fmt.Sprintf(`{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"4548-4"}]},"valueQuantity":{"value":%.1f,"unit":"%%"}}`, 5+mrand.Float64()*5))
	var rec struct {
		ID string `json:"id"`
	}
	if err := b.c.Do(ctx, "POST", "/v1/records", tok, map[string]any{"patient": patient, "category": "labs", "content_type": "application/fhir+json", "content": obs}, http.StatusCreated, &rec); err != nil {
		return err
	}
	b.mu.Lock()
	b.records = append(b.records, rec.ID)
	b.mu.Unlock()
	return nil
}

// op runs one operation of the mix.
func (b *bench) op(ctx context.Context, name string) error {
	switch name {
	case "token":
		_, err := b.exchange(ctx, []string{benchHospA, benchHospB, benchReg}[mrand.IntN(3)])
		return err
	case "upload":
		return b.upload(ctx, b.patient())
	case "consent":
		b.mu.Lock()
		var revoke pendingConsent
		if len(b.pending) > 0 {
			revoke, b.pending = b.pending[0], b.pending[1:]
		}
		b.mu.Unlock()
		if revoke.id != "" {
			ptok, err := b.patientToken(revoke.patient)
			if err != nil {
				return err
			}
			return b.c.Do(ctx, "POST", "/v1/consents/"+revoke.id+"/revoke", ptok, nil, http.StatusOK, nil)
		}
		patient := b.patient()
		ptok, err := b.patientToken(patient)
		if err != nil {
			return err
		}
		var out struct {
			Consent struct {
				ID string `json:"id"`
			} `json:"consent"`
		}
		grant := map[string]any{"grantee": map[string]string{"org": benchHospB}, "categories": []string{"vitals"}, "purposes": []string{"TREAT"}}
		if err := b.c.Do(ctx, "POST", "/v1/consents", ptok, grant, http.StatusCreated, &out); err != nil {
			return err
		}
		b.mu.Lock()
		b.pending = append(b.pending, pendingConsent{patient, out.Consent.ID})
		b.mu.Unlock()
		return nil
	case "read":
		tok, err := b.token(ctx, benchHospB)
		if err != nil {
			return err
		}
		b.mu.Lock()
		id := b.records[mrand.IntN(len(b.records))]
		b.mu.Unlock()
		return b.c.Do(ctx, "GET", "/v1/records/"+id+"?purpose=TREAT", tok, nil, http.StatusOK, nil)
	case "listing":
		tok, err := b.token(ctx, benchHospB)
		if err != nil {
			return err
		}
		return b.c.Do(ctx, "GET", "/v1/patients/"+b.patient()+"/records?purpose=TREAT", tok, nil, http.StatusOK, nil)
	case "audit":
		tok, err := b.token(ctx, benchReg)
		if err != nil {
			return err
		}
		return b.c.Do(ctx, "GET", "/v1/audit/events?limit=20&patient="+b.patient(), tok, nil, http.StatusOK, nil)
	case "access-log":
		ptok, err := b.patientToken(b.patient())
		if err != nil {
			return err
		}
		return b.c.Do(ctx, "GET", "/v1/me/access-log?limit=20", ptok, nil, http.StatusOK, nil)
	case "checkpoint":
		tok, err := b.token(ctx, benchHospA)
		if err != nil {
			return err
		}
		return b.c.Do(ctx, "GET", "/v1/ledger/checkpoint", tok, nil, http.StatusOK, nil)
	}
	return fmt.Errorf("unknown operation %q", name)
}

// mixer picks the operations of the mix by smooth weighted round robin:
// deterministic, interleaved, and every operation appears within the first
// total-weight picks.
type mixer struct {
	mu      sync.Mutex
	current []int
}

func (m *mixer) next() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.current == nil {
		m.current = make([]int, len(benchMix))
	}
	total, best := 0, 0
	for i, op := range benchMix {
		m.current[i] += op.weight
		total += op.weight
		if m.current[i] > m.current[best] {
			best = i
		}
	}
	m.current[best] -= total
	return benchMix[best].name
}

// memSample is the target's resident memory at a time.
type memSample struct {
	at  time.Duration
	rss int64 // bytes; -1 when unknown
}

func (b *bench) rss(ctx context.Context) int64 {
	if b.cfg.pid > 0 {
		f, err := os.Open("/proc/" + strconv.Itoa(b.cfg.pid) + "/status")
		if err != nil {
			return -1
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
				kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
				if err == nil {
					return kb << 10
				}
			}
		}
		return -1
	}
	req, err := http.NewRequestWithContext(ctx, "GET", b.cfg.base+"/metrics", nil)
	if err != nil {
		return -1
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "process_resident_memory_bytes "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return int64(f)
			}
		}
	}
	return -1
}

type benchSummary struct {
	elapsed    time.Duration
	rate       float64
	total      int
	errors     int
	overloaded int64
	ops        []opSummary
	mem        []memSample
}

type opSummary struct {
	name          string
	count, errors int
	p50, p99, max time.Duration
	firstErrs     []string
}

func (b *bench) run(ctx context.Context) (*benchSummary, error) {
	if err := b.setup(ctx); err != nil {
		return nil, err
	}
	b.stats = map[string]*opStats{}
	for _, m := range benchMix {
		b.stats[m.name] = &opStats{}
	}
	fmt.Fprintf(b.e.stdout, "bench against %s: %.1f operations/s for %s (%d patients %s…)\n", b.cfg.base, b.cfg.rate, b.cfg.duration, len(b.patients), strings.TrimSuffix(b.patients[0], "-0"))
	sem := make(chan struct{}, b.cfg.concurrency)
	var wg sync.WaitGroup
	var done, failed, overloaded atomic.Int64
	mem := []memSample{{0, b.rss(ctx)}}
	start := time.Now()
	runCtx, cancel := context.WithTimeout(ctx, b.cfg.duration)
	defer cancel()
	tick := time.NewTicker(time.Duration(float64(time.Second) / b.cfg.rate))
	defer tick.Stop()
	prog := time.NewTicker(b.cfg.progress)
	defer prog.Stop()
loop:
	for {
		select {
		case <-runCtx.Done():
			break loop
		case <-prog.C:
			s := memSample{time.Since(start).Round(time.Second), b.rss(ctx)}
			mem = append(mem, s)
			el := time.Since(start).Seconds()
			fmt.Fprintf(b.e.stdout, "  %6s  %7d ops  %6.1f ops/s  %d errors  %d overloaded  rss %s\n",
				s.at, done.Load(), float64(done.Load())/el, failed.Load(), overloaded.Load(), mib(s.rss))
		case <-tick.C:
			select {
			case sem <- struct{}{}:
			default:
				overloaded.Add(1)
				continue
			}
			wg.Add(1)
			go func(name string) {
				defer wg.Done()
				defer func() { <-sem }()
				opCtx, opCancel := context.WithTimeout(ctx, 30*time.Second)
				defer opCancel()
				t0 := time.Now()
				err := b.op(opCtx, name)
				b.stats[name].add(time.Since(t0), err)
				done.Add(1)
				if err != nil {
					failed.Add(1)
				}
			}(b.mix.next())
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	mem = append(mem, memSample{elapsed.Round(time.Second), b.rss(ctx)})
	sum := &benchSummary{elapsed: elapsed, rate: b.cfg.rate, overloaded: overloaded.Load(), mem: mem}
	for _, m := range benchMix {
		st := b.stats[m.name]
		st.mu.Lock()
		l := slices.Clone(st.latencies)
		o := opSummary{name: m.name, count: len(l), errors: st.errors, firstErrs: st.firstErrs}
		st.mu.Unlock()
		sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
		if len(l) > 0 {
			o.p50, o.p99, o.max = quantile(l, 0.50), quantile(l, 0.99), l[len(l)-1]
		}
		sum.total += o.count
		sum.errors += o.errors
		sum.ops = append(sum.ops, o)
	}
	return sum, nil
}

// quantile of sorted latencies (nearest rank).
func quantile(sorted []time.Duration, q float64) time.Duration {
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func mib(b int64) string {
	if b < 0 {
		return "?"
	}
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}

func (s *benchSummary) print(w io.Writer) {
	fmt.Fprintf(w, "\n%d operations in %s: %.1f ops/s (target %.1f), %d errors, %d ticks overloaded\n\n",
		s.total, s.elapsed.Round(time.Millisecond), float64(s.total)/s.elapsed.Seconds(), s.rate, s.errors, s.overloaded)
	fmt.Fprintf(w, "%-12s %8s %8s %9s %9s %9s %9s\n", "operation", "count", "errors", "ops/s", "p50", "p99", "max")
	for _, o := range s.ops {
		fmt.Fprintf(w, "%-12s %8d %8d %9.2f %9s %9s %9s\n", o.name, o.count, o.errors, float64(o.count)/s.elapsed.Seconds(),
			o.p50.Round(10*time.Microsecond), o.p99.Round(10*time.Microsecond), o.max.Round(10*time.Microsecond))
		for _, e := range o.firstErrs {
			fmt.Fprintf(w, "    error: %s\n", truncate.String(e, 200))
		}
	}
	fmt.Fprintf(w, "\nmemory (target RSS):")
	for _, m := range s.mem {
		fmt.Fprintf(w, " %s=%s", m.at, mib(m.rss))
	}
	fmt.Fprintln(w)
	if lo, hi, ok := s.warmMemory(); ok {
		fmt.Fprintf(w, "memory after the first minute (warm-up: caches and the GC heap goal fill): min %s, max %s, spread %s\n", mib(lo), mib(hi), mib(hi-lo))
	}
}

// warmMemory is the lowest and highest RSS sampled from the first minute
// on, once the process has reached its working set; ok is false without
// two such samples.
func (s *benchSummary) warmMemory() (lo, hi int64, ok bool) {
	n := 0
	for _, m := range s.mem {
		if m.at < time.Minute || m.rss < 0 {
			continue
		}
		if n == 0 || m.rss < lo {
			lo = m.rss
		}
		if n == 0 || m.rss > hi {
			hi = m.rss
		}
		n++
	}
	return lo, hi, n >= 2
}

// orgToken registers o with fresh keys under dir (as `healthgw org keygen`
// does) and exchanges a client assertion for an access token.
func (b *bench) orgToken(ctx context.Context, dir string, o auth.Org) (string, error) {
	key, err := registerDemoOrg(ctx, b.e, b.cfg.sf, dir, o)
	if err != nil {
		return "", err
	}
	return b.exchangeKey(ctx, key, o.ID)
}

// exchangeKey signs a client assertion for org with key and exchanges it.
func (b *bench) exchangeKey(ctx context.Context, key jwk.Key, org string) (string, error) {
	endpoint := b.cfg.base + auth.TokenPath
	as, err := auth.NewClientAssertion(key, org, endpoint, time.Now(), 0)
	if err != nil {
		return "", err
	}
	tr, err := b.c.Exchange(ctx, endpoint, as, "")
	if err != nil {
		return "", fmt.Errorf("token for %s: %w", org, err)
	}
	return tr.AccessToken, nil
}
