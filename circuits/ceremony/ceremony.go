package ceremony

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/backend/groth16/bn254/mpcsetup"
	cs "github.com/consensys/gnark/constraint/bn254"

	"github.com/healthgw/healthgw/circuits"
	"github.com/healthgw/healthgw/internal/atomicfile"
)

// Files of a ceremony directory.
const (
	StateFile   = "ceremony.json"
	stateFormat = "healthgw-zk-ceremony/v1"
	lockFile    = ".lock"
	srsFile     = "srs.bin"
)

// Phases.
const (
	Phase1 = 1 // powers of tau, circuit independent
	Phase2 = 2 // circuit specific
	Done   = 3 // keys written
)

// Errors.
var (
	ErrState    = errors.New("ceremony: bad state")
	ErrVerify   = errors.New("ceremony: transcript does not verify")
	ErrLocked   = errors.New("ceremony: directory is locked by another step")
	ErrFinished = errors.New("ceremony: already finalized")
)

// Receipt records one contribution.
type Receipt struct {
	Phase  int
	Index  int
	Name   string
	Time   time.Time
	Hashes map[string]string // circuit name (or "phase1") → hex SHA-256 of the file written
}

// Report is the result of verifying a transcript.
type Report struct {
	Phase         int
	Domain        uint64
	Circuits      []string
	Contributions []Receipt
	Keys          []circuits.CircuitInfo // once Done
}

type stateJSON struct {
	Format        string             `json:"format"`
	Circuits      []circuitStateJSON `json:"circuits"`
	Domain        uint64             `json:"domain"`
	Phase         int                `json:"phase"`
	Phase1Beacon  string             `json:"phase1_beacon,omitempty"`
	Phase2Beacon  string             `json:"phase2_beacon,omitempty"`
	Contributions []receiptJSON      `json:"contributions"`
	Keys          []keyJSON          `json:"keys,omitempty"`
}

type circuitStateJSON struct {
	Name        string `json:"name"`
	Version     int    `json:"version"`
	Constraints int    `json:"constraints"`
}

type receiptJSON struct {
	Phase  int               `json:"phase"`
	Index  int               `json:"index"`
	Name   string            `json:"name"`
	Time   time.Time         `json:"time"`
	Hashes map[string]string `json:"hashes"`
}

type keyJSON struct {
	Name   string `json:"name"`
	VKHash string `json:"vk_hash"`
	PKHash string `json:"pk_hash"`
}

// circuit is one circuit of the ceremony.
type circuit struct {
	name    string
	version int
	ccs     *cs.R1CS
}

// compiler resolves a circuit name; the public API uses statements, tests
// small circuits.
type compiler func(name string) (circuit, error)

func compileStatement(name string) (circuit, error) {
	s, err := circuits.ParseStatement(name)
	if err != nil {
		return circuit{}, err
	}
	ccs, err := circuits.Compile(s)
	if err != nil {
		return circuit{}, err
	}
	r, ok := ccs.(*cs.R1CS)
	if !ok {
		return circuit{}, fmt.Errorf("%s compiles to %T, want a BN254 R1CS", s, ccs)
	}
	return circuit{name: name, version: s.Version(), ccs: r}, nil
}

// transcript is an open ceremony directory.
type transcript struct {
	dir      string
	st       stateJSON
	circuits []circuit
	progress io.Writer
}

// Init starts a ceremony for the statements in dir, which must not hold a
// ceremony yet.
func Init(dir string, statements []circuits.Statement, progress io.Writer) error {
	var names []string
	for _, s := range statements {
		names = append(names, string(s))
	}
	return initCeremony(dir, names, compileStatement, progress)
}

func initCeremony(dir string, names []string, compile compiler, progress io.Writer) error {
	if len(names) == 0 {
		return fmt.Errorf("%w: no circuits", ErrState)
	}
	if err := os.MkdirAll(filepath.Join(dir, "phase1"), 0o755); err != nil {
		return fmt.Errorf("ceremony init: %w", err)
	}
	if _, err := os.Stat(filepath.Join(dir, StateFile)); err == nil {
		return fmt.Errorf("%w: %s already holds a ceremony", ErrState, dir)
	}
	st := stateJSON{Format: stateFormat, Phase: Phase1, Contributions: []receiptJSON{}}
	maxConstraints := 0
	for _, n := range names {
		if slices.ContainsFunc(st.Circuits, func(c circuitStateJSON) bool { return c.Name == n }) {
			return fmt.Errorf("%w: %s listed twice", ErrState, n)
		}
		step := circuits.StartStep(progress, "compiling %s", n)
		c, err := compile(n)
		step.Done(err)
		if err != nil {
			return fmt.Errorf("ceremony init: %w", err)
		}
		st.Circuits = append(st.Circuits, circuitStateJSON{Name: n, Version: c.version, Constraints: c.ccs.GetNbConstraints()})
		maxConstraints = max(maxConstraints, c.ccs.GetNbConstraints())
	}
	st.Domain = ecc.NextPowerOfTwo(uint64(maxConstraints))
	t := &transcript{dir: dir, st: st, progress: progress}
	return t.save()
}

// open reads the state of dir and compiles its circuits.
func open(dir string, compile compiler, progress io.Writer) (*transcript, error) {
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s holds no ceremony (run init)", ErrState, dir)
		}
		return nil, fmt.Errorf("%w: %w", ErrState, err)
	}
	t := &transcript{dir: dir, progress: progress}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&t.st); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrState, StateFile, err)
	}
	if t.st.Format != stateFormat {
		return nil, fmt.Errorf("%w: format %q", ErrState, t.st.Format)
	}
	if t.st.Phase < Phase1 || t.st.Phase > Done || t.st.Domain == 0 || ecc.NextPowerOfTwo(t.st.Domain) != t.st.Domain || t.st.Domain > 1<<26 {
		return nil, fmt.Errorf("%w: phase %d, domain %d", ErrState, t.st.Phase, t.st.Domain)
	}
	for _, cst := range t.st.Circuits {
		step := circuits.StartStep(progress, "compiling %s", cst.Name)
		c, err := compile(cst.Name)
		step.Done(err)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrState, err)
		}
		if c.version != cst.Version || c.ccs.GetNbConstraints() != cst.Constraints {
			return nil, fmt.Errorf("%w: %s is version %d with %d constraints here, the ceremony has version %d with %d", ErrState, cst.Name, c.version, c.ccs.GetNbConstraints(), cst.Version, cst.Constraints)
		}
		if uint64(cst.Constraints) > t.st.Domain {
			return nil, fmt.Errorf("%w: %s does not fit the domain", ErrState, cst.Name)
		}
		t.circuits = append(t.circuits, c)
	}
	return t, nil
}

// lock takes the directory's lock file; unlock removes it.
func lock(dir string) (unlock func(), err error) {
	p := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("%w (remove %s if no step is running)", ErrLocked, p)
		}
		return nil, fmt.Errorf("ceremony: lock: %w", err)
	}
	f.Close()
	return func() { os.Remove(p) }, nil
}

func (t *transcript) save() error {
	b, err := json.MarshalIndent(t.st, "", "  ")
	if err != nil {
		return fmt.Errorf("ceremony: save state: %w", err)
	}
	_, err = writeAtomic(filepath.Join(t.dir, StateFile), append(b, '\n'))
	return err
}

// writeAtomic writes data to path through a synced temporary file and a
// rename, and returns the data's hex SHA-256.
func writeAtomic(path string, data []byte) (string, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", fmt.Errorf("ceremony: %w", err)
	}
	if err := atomicfile.Replace(path, data, 0o644); err != nil { // the transcript is public
		return "", fmt.Errorf("ceremony: %w", err)
	}
	return hashHex(data), nil
}

func hashHex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func serialize(w io.WriterTo) ([]byte, error) {
	var b bytes.Buffer
	if _, err := w.WriteTo(&b); err != nil {
		return nil, fmt.Errorf("ceremony: serialise: %w", err)
	}
	return b.Bytes(), nil
}

// readExact reads path into v, which must consume exactly size bytes (a
// guard against oversized or truncated contributions: the decoder trusts
// the lengths inside the file).
func readExact(path string, size int, v io.ReaderFrom) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrVerify, err)
	}
	if st.Size() != int64(size) {
		return nil, fmt.Errorf("%w: %s is %d bytes, want %d", ErrVerify, path, st.Size(), size)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrVerify, err)
	}
	n, err := v.ReadFrom(bytes.NewReader(b))
	if err != nil || n != int64(len(b)) {
		return nil, fmt.Errorf("%w: %s: malformed (%v)", ErrVerify, path, err)
	}
	return b, nil
}

func (t *transcript) phase1Path(i int) string {
	return filepath.Join(t.dir, "phase1", fmt.Sprintf("%04d.bin", i))
}

func (t *transcript) phase2Path(name string, i int) string {
	return filepath.Join(t.dir, "phase2", name, fmt.Sprintf("%04d.bin", i))
}

func (t *transcript) contributions(phase int) []receiptJSON {
	var rs []receiptJSON
	for _, r := range t.st.Contributions {
		if r.Phase == phase {
			rs = append(rs, r)
		}
	}
	return rs
}

// phase1Size is the serialised size of a phase 1 contribution: the
// starting object plus a 32-byte challenge.
func phase1Size(n uint64) (int, error) {
	b, err := serialize(mpcsetup.NewPhase1(n))
	if err != nil {
		return 0, err
	}
	return len(b) + sha256.Size, nil
}

// readPhase1 reads contribution i (i ≥ 1; 0 is the deterministic start).
func (t *transcript) readPhase1(i, size int) (*mpcsetup.Phase1, []byte, error) {
	if i == 0 {
		return mpcsetup.NewPhase1(t.st.Domain), nil, nil
	}
	p := new(mpcsetup.Phase1)
	b, err := readExact(t.phase1Path(i), size, p)
	return p, b, err
}

// verifyPhase1 replays phase 1 and returns its last contribution.
func (t *transcript) verifyPhase1() (*mpcsetup.Phase1, error) {
	size, err := phase1Size(t.st.Domain)
	if err != nil {
		return nil, err
	}
	prev := mpcsetup.NewPhase1(t.st.Domain)
	for k, r := range t.contributions(Phase1) {
		if r.Index != k+1 {
			return nil, fmt.Errorf("%w: phase 1 contribution %d is numbered %d", ErrState, k+1, r.Index)
		}
		step := circuits.StartStep(t.progress, "verifying phase 1 contribution %d (%s)", r.Index, r.Name)
		next, b, err := t.readPhase1(r.Index, size)
		if err == nil && hashHex(b) != r.Hashes["phase1"] {
			err = fmt.Errorf("%w: phase 1 contribution %d does not match its recorded hash", ErrVerify, r.Index)
		}
		if err == nil {
			if verr := prev.Verify(next); verr != nil {
				err = fmt.Errorf("%w: phase 1 contribution %d (%s): %w", ErrVerify, r.Index, r.Name, verr)
			}
		}
		step.Done(err)
		if err != nil {
			return nil, err
		}
		prev = next
	}
	return prev, nil
}

func receipt(r receiptJSON) Receipt {
	return Receipt(r)
}

// sealPhase1 seals the verified phase 1 with its beacon. It checks the
// stored srs.bin when check is set.
func (t *transcript) sealPhase1(last *mpcsetup.Phase1, check bool) (*mpcsetup.SrsCommons, error) {
	beacon, err := hex.DecodeString(t.st.Phase1Beacon)
	if err != nil || len(beacon) == 0 {
		return nil, fmt.Errorf("%w: phase 1 beacon", ErrState)
	}
	step := circuits.StartStep(t.progress, "sealing phase 1 with the beacon")
	commons := last.Seal(beacon)
	step.Done(nil)
	if check {
		b, err := serialize(&commons)
		if err != nil {
			return nil, err
		}
		stored, err := os.ReadFile(filepath.Join(t.dir, "phase1", srsFile))
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrVerify, err)
		}
		if !bytes.Equal(b, stored) {
			return nil, fmt.Errorf("%w: phase1/%s is not the sealed phase 1", ErrVerify, srsFile)
		}
	}
	return &commons, nil
}

// phase2Start derives a circuit's deterministic phase 2 starting point.
func phase2Start(c circuit, commons *mpcsetup.SrsCommons) (*mpcsetup.Phase2, mpcsetup.Phase2Evaluations) {
	p := new(mpcsetup.Phase2)
	evals := p.Initialize(c.ccs, commons)
	return p, evals
}

// verifyPhase2 replays phase 2 of circuit c from its start and returns
// the last contribution and the evaluations. It reports nothing itself;
// phase2All reports per circuit.
func (t *transcript) verifyPhase2(c circuit, commons *mpcsetup.SrsCommons) (*mpcsetup.Phase2, mpcsetup.Phase2Evaluations, error) {
	prev, evals := phase2Start(c, commons)
	start, err := serialize(prev)
	if err != nil {
		return nil, evals, err
	}
	stored, err := os.ReadFile(t.phase2Path(c.name, 0))
	if err != nil || !bytes.Equal(start, stored) {
		return nil, evals, fmt.Errorf("%w: %s phase 2 start file does not match the sealed phase 1", ErrVerify, c.name)
	}
	size := len(start) + sha256.Size
	for k, r := range t.contributions(Phase2) {
		if r.Index != k+1 {
			return nil, evals, fmt.Errorf("%w: phase 2 contribution %d is numbered %d", ErrState, k+1, r.Index)
		}
		next := new(mpcsetup.Phase2)
		b, err := readExact(t.phase2Path(c.name, r.Index), size, next)
		if err != nil {
			return nil, evals, err
		}
		if hashHex(b) != r.Hashes[c.name] {
			return nil, evals, fmt.Errorf("%w: phase 2 contribution %d to %s does not match its recorded hash", ErrVerify, r.Index, c.name)
		}
		if err := prev.Verify(next); err != nil {
			return nil, evals, fmt.Errorf("%w: phase 2 contribution %d (%s) to %s: %w", ErrVerify, r.Index, r.Name, c.name, err)
		}
		prev = next
	}
	return prev, evals, nil
}

// phase2All verifies phase 2 of every circuit and, if seal, seals each,
// working on the circuits in parallel: deriving a circuit's phase 2 start
// is the slowest step of the ceremony and is single-threaded in gnark.
func (t *transcript) phase2All(commons *mpcsetup.SrsCommons, seal bool) ([]keyPair, error) {
	var mu sync.Mutex
	report := func(format string, args ...any) {
		if t.progress != nil {
			mu.Lock()
			fmt.Fprintf(t.progress, format+"\n", args...)
			mu.Unlock()
		}
	}
	report("verifying phase 2 of %d circuits in parallel (deriving each start takes a while) …", len(t.circuits))
	kps := make([]keyPair, len(t.circuits))
	errs := make([]error, len(t.circuits))
	sem := make(chan struct{}, max(1, runtime.GOMAXPROCS(0)))
	var wg sync.WaitGroup
	for i, c := range t.circuits {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			start := time.Now()
			last, evals, err := t.verifyPhase2(c, commons)
			if err == nil && seal {
				kps[i], err = t.sealPhase2(c, last, &evals, commons)
			}
			errs[i] = err
			if err != nil {
				report("  %s: failed", c.name)
				return
			}
			report("  %s: start derived, %d contributions verified%s (%.1fs)", c.name, len(t.contributions(Phase2)),
				map[bool]string{true: ", sealed", false: ""}[seal], time.Since(start).Seconds())
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return kps, nil
}

// keyPair seals phase 2 of a circuit.
type keyPair struct {
	name   string
	pk     groth16.ProvingKey
	vk     groth16.VerifyingKey
	pkHash string
	vkHash string
	size   int
}

func (t *transcript) sealPhase2(c circuit, last *mpcsetup.Phase2, evals *mpcsetup.Phase2Evaluations, commons *mpcsetup.SrsCommons) (keyPair, error) {
	beacon, err := hex.DecodeString(t.st.Phase2Beacon)
	if err != nil || len(beacon) == 0 {
		return keyPair{}, fmt.Errorf("%w: phase 2 beacon", ErrState)
	}
	pk, vk := last.Seal(commons, evals, beacon)
	pkb, err := serialize(pk)
	if err != nil {
		return keyPair{}, err
	}
	vkb, err := serialize(vk)
	if err != nil {
		return keyPair{}, err
	}
	return keyPair{name: c.name, pk: pk, vk: vk, pkHash: hashHex(pkb), vkHash: hashHex(vkb), size: c.ccs.GetNbConstraints()}, nil
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
