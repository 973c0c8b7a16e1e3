package ledger

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

const testOrigin = "healthgw.test/ledger"

func testSigner(t testing.TB, origin string) (note.Signer, note.Verifier) {
	t.Helper()
	skey, vkey, err := GenerateCheckpointKey(origin)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return s, v
}

func TestCheckpointSignOpen(t *testing.T) {
	s, v := testSigner(t, testOrigin)
	_, otherV := testSigner(t, testOrigin)
	sameNameS, _ := testSigner(t, testOrigin)
	otherOriginS, otherOriginV := testSigner(t, "other.example/log")
	want := Checkpoint{Origin: testOrigin, Size: 42, Hash: tlog.RecordHash([]byte("x"))}
	raw, err := SignCheckpoint(want, s)
	if err != nil {
		t.Fatal(err)
	}
	got, err := OpenCheckpoint(raw, v, testOrigin)
	if err != nil {
		t.Fatalf("OpenCheckpoint: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	if got, err := ParseCheckpoint(raw); err != nil || got != want {
		t.Errorf("ParseCheckpoint = %+v, %v", got, err)
	}

	forged := bytes.Replace(raw, []byte("\n42\n"), []byte("\n43\n"), 1)
	wrongKey, err := SignCheckpoint(want, sameNameS)
	if err != nil {
		t.Fatal(err)
	}
	otherLog, err := SignCheckpoint(Checkpoint{Origin: "other.example/log", Size: 1}, otherOriginS)
	if err != nil {
		t.Fatal(err)
	}
	notes := []struct {
		name   string
		raw    []byte
		v      note.Verifier
		origin string
		want   error
	}{
		{"forged text", forged, v, testOrigin, ErrBadSignature},
		{"signed by another key of the same name", wrongKey, v, testOrigin, ErrBadSignature},
		{"verified with another key", raw, otherV, testOrigin, ErrBadSignature},
		{"wrong origin", otherLog, otherOriginV, testOrigin, ErrWrongOrigin},
		{"not a note", []byte("hello"), v, testOrigin, ErrBadCheckpoint},
		{"signature stripped", raw[:bytes.Index(raw, []byte("\n\n"))+2], v, testOrigin, ErrBadCheckpoint},
	}
	for _, tc := range notes {
		t.Run(tc.name, func(t *testing.T) {
			if c, err := OpenCheckpoint(tc.raw, tc.v, tc.origin); !errors.Is(err, tc.want) {
				t.Errorf("OpenCheckpoint = (%+v, %v), want %v", c, err, tc.want)
			}
		})
	}
}

func TestParseCheckpointRejects(t *testing.T) {
	s, _ := testSigner(t, testOrigin)
	sign := func(text string) []byte {
		b, err := note.Sign(&note.Note{Text: text}, s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	good := fmt.Sprintf("%s\n5\n%s\n", testOrigin, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=")
	if _, err := ParseCheckpoint(sign(good)); err != nil {
		t.Fatalf("good: %v", err)
	}
	for _, text := range []string{
		"origin\n",
		"\n5\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
		"origin\n-1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
		"origin\nfive\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
		"origin\n5\nnot base64\n",
		"origin\n5\nAAAA\n",
	} {
		if c, err := ParseCheckpoint(sign(text)); !errors.Is(err, ErrBadCheckpoint) {
			t.Errorf("ParseCheckpoint(%q) = (%+v, %v), want ErrBadCheckpoint", text, c, err)
		}
	}
}

// FuzzOpenCheckpoint: parsing untrusted checkpoints never panics, and a
// checkpoint that opens re-signs to the same text.
func FuzzOpenCheckpoint(f *testing.F) {
	s, v := testSigner(f, testOrigin)
	raw, err := SignCheckpoint(Checkpoint{Origin: testOrigin, Size: 7, Hash: tlog.RecordHash([]byte("a"))}, s)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw)
	f.Add([]byte("healthgw.test/ledger\n1\nAAAA\n\n— healthgw.test/ledger AAAAAAAA\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, b []byte) {
		if c, err := ParseCheckpoint(b); err == nil {
			if c.Origin == "" {
				t.Fatalf("ParseCheckpoint accepted an empty origin")
			}
		}
		c, err := OpenCheckpoint(b, v, testOrigin)
		if err != nil {
			return
		}
		// Only our key can have signed it, so it must be the seed.
		again, err := SignCheckpoint(c, s)
		if err != nil {
			t.Fatal(err)
		}
		if c2, err := OpenCheckpoint(again, v, testOrigin); err != nil || c2 != c {
			t.Fatalf("re-signed checkpoint = %+v, %v; want %+v", c2, err, c)
		}
	})
}

func TestCheckpointKeys(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keys", "checkpoint.key")
	s, vkey, err := LoadOrCreateCheckpointKey(path, testOrigin)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if s.Name() != testOrigin {
		t.Errorf("key name %q, want %q", s.Name(), testOrigin)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	s2, vkey2, err := LoadOrCreateCheckpointKey(path, "ignored.example")
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if s2.KeyHash() != s.KeyHash() || vkey2 != vkey {
		t.Errorf("reloading gave another key")
	}
	pub, err := os.ReadFile(path + VerifierKeySuffix)
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(pub)) != vkey {
		t.Errorf("verifier key file %q, want %q", pub, vkey)
	}
	for _, p := range []string{path + VerifierKeySuffix, path} {
		v, err := LoadCheckpointVerifier(p)
		if err != nil {
			t.Fatalf("LoadCheckpointVerifier(%s): %v", p, err)
		}
		raw, err := SignCheckpoint(Checkpoint{Origin: testOrigin, Size: 1}, s2)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := OpenCheckpoint(raw, v, testOrigin); err != nil {
			t.Errorf("verifier from %s rejects the key's checkpoint: %v", p, err)
		}
	}
	ls, err := LoadCheckpointSigner(path)
	if err != nil || ls.KeyHash() != s.KeyHash() {
		t.Errorf("LoadCheckpointSigner = %v, %v", ls, err)
	}

	skey, vkeyGen, err := GenerateCheckpointKey(testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := VerifierKey(skey); err != nil || got != vkeyGen {
		t.Errorf("VerifierKey = %q, %v; want %q", got, err, vkeyGen)
	}
	if _, _, err := GenerateCheckpointKey("has space"); !errors.Is(err, ErrBadKey) {
		t.Errorf("GenerateCheckpointKey(bad name): err = %v, want ErrBadKey", err)
	}
	bad := filepath.Join(dir, "bad.key")
	if err := os.WriteFile(bad, []byte("PRIVATE+KEY+nope\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadCheckpointSigner(bad); !errors.Is(err, ErrBadKey) {
		t.Errorf("LoadCheckpointSigner(bad): err = %v, want ErrBadKey", err)
	}
	if _, err := LoadCheckpointVerifier(bad); !errors.Is(err, ErrBadKey) {
		t.Errorf("LoadCheckpointVerifier(bad): err = %v, want ErrBadKey", err)
	}
	if err := WriteKeyFile(path, skey, false); err == nil {
		t.Errorf("WriteKeyFile overwrote an existing key")
	}
}
