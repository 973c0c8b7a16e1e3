package ceremony

import (
	"cmp"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/consensys/gnark/backend/groth16/bn254/mpcsetup"

	"github.com/healthgw/healthgw/circuits"
)

// Contribute adds one participant's contribution to the current phase
// (phase 1, or phase 2 of every circuit) and returns its receipt. name
// identifies the participant in the transcript (for example the hospital's
// org ID). The randomness comes from crypto/rand inside gnark and is
// discarded when Contribute returns.
func Contribute(dir, name string, progress io.Writer) (*Receipt, error) {
	return contribute(dir, name, compileStatement, progress)
}

func contribute(dir, name string, compile compiler, progress io.Writer) (*Receipt, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return nil, fmt.Errorf("%w: a contribution needs a participant name", ErrState)
	}
	unlock, err := lock(dir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	t, err := open(dir, compile, progress)
	if err != nil {
		return nil, err
	}
	r := receiptJSON{Phase: t.st.Phase, Name: name, Time: time.Now().UTC().Truncate(time.Second), Hashes: map[string]string{}}
	r.Index = len(t.contributions(t.st.Phase)) + 1
	switch t.st.Phase {
	case Phase1:
		size, err := phase1Size(t.st.Domain)
		if err != nil {
			return nil, err
		}
		step := circuits.StartStep(progress, "reading phase 1 contribution %d", r.Index-1)
		p, _, err := t.readPhase1(r.Index-1, size)
		step.Done(err)
		if err != nil {
			return nil, err
		}
		step = circuits.StartStep(progress, "contributing to phase 1 (domain %d)", t.st.Domain)
		p.Contribute()
		b, err := serialize(p)
		if err == nil {
			r.Hashes["phase1"], err = writeAtomic(t.phase1Path(r.Index), b)
		}
		step.Done(err)
		if err != nil {
			return nil, err
		}
	case Phase2:
		for _, c := range t.circuits {
			step := circuits.StartStep(progress, "contributing to phase 2 of %s", c.name)
			p := new(mpcsetup.Phase2)
			b, err := os.ReadFile(t.phase2Path(c.name, r.Index-1))
			if err == nil {
				var n int64
				if n, err = p.ReadFrom(bytesReader(b)); err == nil && n != int64(len(b)) {
					err = fmt.Errorf("%w: trailing bytes", ErrVerify)
				}
			}
			if err == nil {
				p.Contribute()
				if b, err = serialize(p); err == nil {
					r.Hashes[c.name], err = writeAtomic(t.phase2Path(c.name, r.Index), b)
				}
			}
			step.Done(err)
			if err != nil {
				return nil, fmt.Errorf("ceremony: contribute to %s: %w", c.name, err)
			}
		}
	default:
		return nil, ErrFinished
	}
	t.st.Contributions = append(t.st.Contributions, r)
	if err := t.save(); err != nil {
		return nil, err
	}
	rc := receipt(r)
	return &rc, nil
}

// VerifyKeys replays the whole transcript (see the package documentation)
// and checks that the key directory keysDir holds exactly the ceremony's
// keys; it reports what it verified. It returns an error wrapping
// ErrVerify if any contribution, seal or key does not check.
func VerifyKeys(dir, keysDir string, progress io.Writer) (*Report, error) {
	return verify(dir, compileStatement, progress, keysDir)
}

func verify(dir string, compile compiler, progress io.Writer, keysDir string) (*Report, error) {
	t, err := open(dir, compile, progress)
	if err != nil {
		return nil, err
	}
	rep := &Report{Phase: t.st.Phase, Domain: t.st.Domain}
	for _, c := range t.circuits {
		rep.Circuits = append(rep.Circuits, c.name)
	}
	last1, err := t.verifyPhase1()
	if err != nil {
		return nil, err
	}
	if t.st.Phase >= Phase2 {
		commons, err := t.sealPhase1(last1, true)
		if err != nil {
			return nil, err
		}
		kps, err := t.phase2All(commons, t.st.Phase == Done)
		if err != nil {
			return nil, err
		}
		for i, c := range t.circuits {
			if t.st.Phase != Done {
				break
			}
			if err := t.checkKeys(kps[i], keysDir); err != nil {
				return nil, err
			}
			rep.Keys = append(rep.Keys, circuits.CircuitInfo{
				Statement: circuits.Statement(c.name), Version: c.version, VKHash: kps[i].vkHash,
				Setup: circuits.SetupCeremony, Constraints: kps[i].size,
			})
		}
	}
	for _, r := range t.st.Contributions {
		rep.Contributions = append(rep.Contributions, receipt(r))
	}
	return rep, nil
}

// checkKeys compares recomputed keys with the recorded hashes and, if
// keysDir is set, with the key files.
func (t *transcript) checkKeys(kp keyPair, keysDir string) error {
	var rec *keyJSON
	for i := range t.st.Keys {
		if t.st.Keys[i].Name == kp.name {
			rec = &t.st.Keys[i]
		}
	}
	if rec == nil || rec.VKHash != kp.vkHash || rec.PKHash != kp.pkHash {
		return fmt.Errorf("%w: recorded keys of %s are not the ones the transcript yields", ErrVerify, kp.name)
	}
	if keysDir == "" {
		return nil
	}
	for file, want := range map[string]string{circuits.VerifyingKeyFile: kp.vkHash, circuits.ProvingKeyFile: kp.pkHash} {
		b, err := os.ReadFile(filepath.Join(keysDir, kp.name, file))
		if err != nil {
			return fmt.Errorf("%w: %w", ErrVerify, err)
		}
		if hashHex(b) != want {
			return fmt.Errorf("%w: %s/%s/%s is not the ceremony's key", ErrVerify, keysDir, kp.name, file)
		}
	}
	return nil
}

// Finalize closes the current phase with a public random beacon. Closing
// phase 1 seals it and derives every circuit's phase 2 start; closing phase
// 2 seals every circuit and writes the key directory keysDir ("" means
// <dir>/keys), which must not exist yet. Each phase needs at least one
// contribution. The transcript is verified first.
func Finalize(dir string, beacon []byte, keysDir string, progress io.Writer) (*Report, error) {
	keysDir = cmp.Or(keysDir, filepath.Join(dir, "keys"))
	if entries, err := os.ReadDir(keysDir); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("%w: key directory %s is not empty", ErrState, keysDir)
	}
	write := func(kps []keyPair) error {
		keys := map[circuits.Statement]circuits.KeyPair{}
		for _, kp := range kps {
			keys[circuits.Statement(kp.name)] = circuits.KeyPair{PK: kp.pk, VK: kp.vk, Constraints: kp.size}
		}
		_, err := circuits.WriteKeys(keysDir, circuits.SetupCeremony, keys, progress)
		return err
	}
	return finalize(dir, beacon, compileStatement, write, progress)
}

// finalize closes the current phase. After phase 2 it hands the keys to
// write before recording the end, so that a failure to write them leaves
// the ceremony open to finalize again.
func finalize(dir string, beacon []byte, compile compiler, write func([]keyPair) error, progress io.Writer) (*Report, error) {
	if len(beacon) < 16 {
		return nil, fmt.Errorf("%w: the beacon must have at least 16 bytes", ErrState)
	}
	unlock, err := lock(dir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	t, err := open(dir, compile, progress)
	if err != nil {
		return nil, err
	}
	if t.st.Phase == Done {
		return nil, ErrFinished
	}
	if len(t.contributions(t.st.Phase)) == 0 {
		return nil, fmt.Errorf("%w: phase %d has no contribution yet", ErrState, t.st.Phase)
	}
	last1, err := t.verifyPhase1()
	if err != nil {
		return nil, err
	}
	switch t.st.Phase {
	case Phase1:
		t.st.Phase1Beacon = hex.EncodeToString(beacon)
		commons, err := t.sealPhase1(last1, false)
		if err != nil {
			return nil, err
		}
		b, err := serialize(commons)
		if err != nil {
			return nil, err
		}
		if _, err := writeAtomic(filepath.Join(t.dir, "phase1", srsFile), b); err != nil {
			return nil, err
		}
		step := circuits.StartStep(progress, "deriving the phase 2 start of %d circuits in parallel", len(t.circuits))
		errs := make([]error, len(t.circuits))
		var wg sync.WaitGroup
		for i, c := range t.circuits {
			wg.Go(func() {
				p, _ := phase2Start(c, commons)
				b, err := serialize(p)
				if err == nil {
					_, err = writeAtomic(t.phase2Path(c.name, 0), b)
				}
				errs[i] = err
			})
		}
		wg.Wait()
		err = errors.Join(errs...)
		step.Done(err)
		if err != nil {
			return nil, err
		}
		t.st.Phase = Phase2
	default: // Phase2
		commons, err := t.sealPhase1(last1, true)
		if err != nil {
			return nil, err
		}
		t.st.Phase2Beacon = hex.EncodeToString(beacon)
		kps, err := t.phase2All(commons, true)
		if err != nil {
			return nil, err
		}
		for _, kp := range kps {
			t.st.Keys = append(t.st.Keys, keyJSON{Name: kp.name, VKHash: kp.vkHash, PKHash: kp.pkHash})
		}
		if write != nil {
			if err := write(kps); err != nil {
				return nil, err
			}
		}
		t.st.Phase = Done
	}
	if err := t.save(); err != nil {
		return nil, err
	}
	return t.report(), nil
}

// report describes the recorded state (without verifying it).
func (t *transcript) report() *Report {
	rep := &Report{Phase: t.st.Phase, Domain: t.st.Domain}
	for _, c := range t.circuits {
		rep.Circuits = append(rep.Circuits, c.name)
		for _, k := range t.st.Keys {
			if k.Name == c.name {
				rep.Keys = append(rep.Keys, circuits.CircuitInfo{
					Statement: circuits.Statement(c.name), Version: c.version, VKHash: k.VKHash,
					Setup: circuits.SetupCeremony, Constraints: c.ccs.GetNbConstraints(),
				})
			}
		}
	}
	for _, r := range t.st.Contributions {
		rep.Contributions = append(rep.Contributions, receipt(r))
	}
	return rep
}
