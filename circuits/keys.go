package circuits

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/backend/groth16"
	groth16bn254 "github.com/consensys/gnark/backend/groth16/bn254"
	"github.com/consensys/gnark/constraint"

	"github.com/healthgw/healthgw/internal/atomicfile"
)

// Key directory layout (written by WriteKeys, read by LoadVerifier and
// LoadProver):
//
//	<dir>/manifest.json          statements, versions, VK hashes, setup kind
//	<dir>/<statement>/vk.bin     verifying key (gnark binary, compressed points)
//	<dir>/<statement>/pk.bin     proving key (gnark binary, compressed points),
//	                             served to patient apps for download
const (
	ManifestFile     = "manifest.json"
	VerifyingKeyFile = "vk.bin"
	ProvingKeyFile   = "pk.bin"
	manifestFormat   = "healthgw-zk-keys/v1"
)

// Setup kinds recorded in the manifest and in circuit.registered.
const (
	SetupCeremony = "ceremony"
	SetupDev      = "dev"
)

// CircuitInfo describes one statement's keys: the content of a
// circuit.registered ledger entry plus the circuit's size.
type CircuitInfo struct {
	Statement   Statement
	Version     int
	VKHash      string // hex SHA-256 of vk.bin, the serialised verifying key
	Setup       string // SetupCeremony or SetupDev
	Constraints int
}

// KeyPair is a statement's Groth16 keys.
type KeyPair struct {
	PK          groth16.ProvingKey
	VK          groth16.VerifyingKey
	Constraints int
}

// ProvingKeyPath is where the proving key of s lives in a key directory,
// for the server to offer it for download.
func ProvingKeyPath(dir string, s Statement) string {
	return filepath.Join(dir, string(s), ProvingKeyFile)
}

// WriteKeys writes a key directory for the given key pairs. dir must not
// exist yet or be empty: keys are written to a temporary sibling directory
// that is renamed into place only when complete, so a failure leaves
// nothing behind and existing keys are never overwritten.
func WriteKeys(dir, setup string, keys map[Statement]KeyPair, progress io.Writer) ([]CircuitInfo, error) {
	if setup != SetupCeremony && setup != SetupDev {
		return nil, fmt.Errorf("write keys: unknown setup kind %q", setup)
	}
	if len(keys) == 0 {
		return nil, errors.New("write keys: no keys")
	}
	for s := range keys {
		if err := s.valid(); err != nil {
			return nil, fmt.Errorf("write keys: %w", err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(filepath.Clean(dir)), 0o755); err != nil {
		return nil, fmt.Errorf("write keys: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(filepath.Clean(dir)), ".keys-*")
	if err != nil {
		return nil, fmt.Errorf("write keys: %w", err)
	}
	defer os.RemoveAll(tmp) // no-op after the rename

	var infos []CircuitInfo
	for _, s := range Statements() {
		kp, ok := keys[s]
		if !ok {
			continue
		}
		st := StartStep(progress, "writing keys for %s", s)
		info, err := writeKeyPair(tmp, s, setup, kp)
		st.Done(err)
		if err != nil {
			return nil, err
		}
		infos = append(infos, info)
	}
	if err := writeManifest(tmp, infos); err != nil {
		return nil, err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return nil, fmt.Errorf("write keys: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return nil, fmt.Errorf("write keys: %s must not exist or be empty: %w", dir, err)
	}
	return infos, nil
}

func writeKeyPair(dir string, s Statement, setup string, kp KeyPair) (CircuitInfo, error) {
	sd := filepath.Join(dir, string(s))
	if err := os.Mkdir(sd, 0o755); err != nil {
		return CircuitInfo{}, fmt.Errorf("write keys: %w", err)
	}
	var vk bytes.Buffer
	if _, err := kp.VK.WriteTo(&vk); err != nil {
		return CircuitInfo{}, fmt.Errorf("write keys: %s verifying key: %w", s, err)
	}
	if err := writeFileSync(filepath.Join(sd, VerifyingKeyFile), vk.Bytes()); err != nil {
		return CircuitInfo{}, err
	}
	var pk bytes.Buffer
	if _, err := kp.PK.WriteTo(&pk); err != nil {
		return CircuitInfo{}, fmt.Errorf("write keys: %s proving key: %w", s, err)
	}
	if err := writeFileSync(filepath.Join(sd, ProvingKeyFile), pk.Bytes()); err != nil {
		return CircuitInfo{}, err
	}
	h := sha256.Sum256(vk.Bytes())
	return CircuitInfo{
		Statement:   s,
		Version:     s.Version(),
		VKHash:      hex.EncodeToString(h[:]),
		Setup:       setup,
		Constraints: kp.Constraints,
	}, nil
}

// writeFileSync creates path atomically; key files are never replaced.
func writeFileSync(path string, data []byte) error {
	if err := atomicfile.Create(path, data, 0o644); err != nil {
		return fmt.Errorf("write keys: %w", err)
	}
	return nil
}

type manifestJSON struct {
	Format   string        `json:"format"`
	Circuits []circuitJSON `json:"circuits"`
}

type circuitJSON struct {
	Statement   string `json:"statement"`
	Version     int    `json:"version"`
	VKHash      string `json:"vk_hash"`
	Setup       string `json:"setup"`
	Constraints int    `json:"constraints"`
}

func writeManifest(dir string, infos []CircuitInfo) error {
	m := manifestJSON{Format: manifestFormat}
	for _, i := range infos {
		m.Circuits = append(m.Circuits, circuitJSON{
			Statement: string(i.Statement), Version: i.Version, VKHash: i.VKHash,
			Setup: i.Setup, Constraints: i.Constraints,
		})
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	return writeFileSync(filepath.Join(dir, ManifestFile), append(b, '\n'))
}

// ReadManifest reads the manifest of a key directory.
func ReadManifest(dir string) ([]CircuitInfo, error) { return readManifest(dir) }

func readManifest(dir string) ([]CircuitInfo, error) {
	b, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s: no %s (run healthgw zk setup or a ceremony)", ErrKeys, dir, ManifestFile)
		}
		return nil, fmt.Errorf("%w: %w", ErrKeys, err)
	}
	var m manifestJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: manifest: %w", ErrKeys, err)
	}
	if m.Format != manifestFormat {
		return nil, fmt.Errorf("%w: manifest format %q, want %q", ErrKeys, m.Format, manifestFormat)
	}
	var infos []CircuitInfo
	for _, c := range m.Circuits {
		s, err := ParseStatement(c.Statement)
		if err != nil {
			return nil, fmt.Errorf("%w: manifest: %w", ErrKeys, err)
		}
		if c.Version != s.Version() {
			return nil, fmt.Errorf("%w: %s keys are for version %d, this build has version %d", ErrKeys, s, c.Version, s.Version())
		}
		if c.Setup != SetupCeremony && c.Setup != SetupDev {
			return nil, fmt.Errorf("%w: %s: unknown setup %q", ErrKeys, s, c.Setup)
		}
		if slices.ContainsFunc(infos, func(i CircuitInfo) bool { return i.Statement == s }) {
			return nil, fmt.Errorf("%w: manifest lists %s twice", ErrKeys, s)
		}
		infos = append(infos, CircuitInfo{Statement: s, Version: c.Version, VKHash: c.VKHash, Setup: c.Setup, Constraints: c.Constraints})
	}
	return infos, nil
}

func readVerifyingKey(dir string, info CircuitInfo) (groth16.VerifyingKey, error) {
	b, err := os.ReadFile(filepath.Join(dir, string(info.Statement), VerifyingKeyFile))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeys, err)
	}
	h := sha256.Sum256(b)
	if hex.EncodeToString(h[:]) != info.VKHash {
		return nil, fmt.Errorf("%w: %s verifying key does not match its manifest hash", ErrKeys, info.Statement)
	}
	vk := groth16.NewVerifyingKey(ecc.BN254)
	n, err := vk.ReadFrom(bytes.NewReader(b))
	if err != nil || n != int64(len(b)) {
		return nil, fmt.Errorf("%w: %s verifying key: malformed", ErrKeys, info.Statement)
	}
	return vk, nil
}

// SetupDevKeys runs a single-party Groth16 setup for each statement and
// writes a key directory marked "dev". FOR DEVELOPMENT ONLY: whoever ran
// it knows the toxic waste and can forge proofs of any statement. Use a
// ceremony (package ceremony) for anything real.
func SetupDevKeys(ctx context.Context, dir string, statements []Statement, progress io.Writer) ([]CircuitInfo, error) {
	keys := map[Statement]KeyPair{}
	for _, s := range statements {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		st := StartStep(progress, "compiling %s", s)
		ccs, err := Compile(s)
		st.Done(err)
		if err != nil {
			return nil, err
		}
		st = StartStep(progress, "groth16 setup for %s (%d constraints)", s, ccs.GetNbConstraints())
		pk, vk, err := groth16.Setup(ccs)
		st.Done(err)
		if err != nil {
			return nil, fmt.Errorf("setup %s: %w", s, err)
		}
		keys[s] = KeyPair{PK: pk, VK: vk, Constraints: ccs.GetNbConstraints()}
	}
	return WriteKeys(dir, SetupDev, keys, progress)
}

// LoadProver compiles statement s and reads its proving key from a key
// directory.
func LoadProver(dir string, s Statement, progress io.Writer) (*Prover, error) {
	infos, err := readManifest(dir)
	if err != nil {
		return nil, err
	}
	if !slices.ContainsFunc(infos, func(i CircuitInfo) bool { return i.Statement == s }) {
		return nil, fmt.Errorf("%w: %s has no keys for %s", ErrKeys, dir, s)
	}
	st := StartStep(progress, "compiling %s", s)
	ccs, err := Compile(s)
	st.Done(err)
	if err != nil {
		return nil, err
	}
	st = StartStep(progress, "loading proving key for %s", s)
	pk, err := ReadProvingKey(ProvingKeyPath(dir, s))
	st.Done(err)
	if err != nil {
		return nil, err
	}
	return NewProver(s, ccs, pk)
}

// ReadProvingKey reads a proving key file.
func ReadProvingKey(path string) (groth16.ProvingKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeys, err)
	}
	defer f.Close()
	pk := groth16.NewProvingKey(ecc.BN254)
	if _, err := pk.ReadFrom(f); err != nil {
		return nil, fmt.Errorf("%w: proving key %s: %v", ErrKeys, path, err)
	}
	return pk, nil
}

// NewProver pairs a compiled statement with its proving key. It checks
// that the key was made for a circuit of this size.
func NewProver(s Statement, ccs constraint.ConstraintSystem, pk groth16.ProvingKey) (*Prover, error) {
	if err := s.valid(); err != nil {
		return nil, err
	}
	if pk == nil || ccs == nil {
		return nil, fmt.Errorf("%w: nil key or constraint system", ErrKeys)
	}
	bpk, ok := pk.(*groth16bn254.ProvingKey)
	if !ok {
		return nil, fmt.Errorf("%w: proving key is %T, want BN254", ErrKeys, pk)
	}
	nbInternal, nbSecret, nbPublic := ccs.GetNbVariables()
	// A ceremony's domain fits its largest circuit, so it may exceed this
	// circuit's own.
	if bpk.Domain.Cardinality < ecc.NextPowerOfTwo(uint64(ccs.GetNbConstraints())) ||
		len(bpk.InfinityA) != nbInternal+nbSecret+nbPublic {
		return nil, fmt.Errorf("%w: proving key does not fit %s version %d", ErrKeys, s, s.Version())
	}
	return &Prover{statement: s, ccs: ccs, pk: pk}, nil
}
