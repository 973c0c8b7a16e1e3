package ledger

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestOpenCheckpointNamesKeys: a checkpoint checked with the wrong key
// fails with a SignatureError naming the key expected and the key that
// signed it, not the bare "note has no verifiable signatures".
func TestOpenCheckpointNamesKeys(t *testing.T) {
	s, _ := testSigner(t, testOrigin)
	_, otherV := testSigner(t, testOrigin)
	raw, err := SignCheckpoint(Checkpoint{Origin: testOrigin, Size: 3}, s)
	if err != nil {
		t.Fatal(err)
	}
	_, err = OpenCheckpoint(raw, otherV, testOrigin)
	var se *SignatureError
	if !errors.As(err, &se) || !errors.Is(err, ErrBadSignature) {
		t.Fatalf("OpenCheckpoint with another key = %v, want a SignatureError matching ErrBadSignature", err)
	}
	want := &SignatureError{Expected: KeyID(otherV.Name(), otherV.KeyHash()), Found: []string{KeyID(s.Name(), s.KeyHash())}}
	if diff := cmp.Diff(want, se); diff != "" {
		t.Errorf("SignatureError (-want +got):\n%s", diff)
	}
	msg := err.Error()
	for _, part := range []string{want.Expected, want.Found[0], "different key"} {
		if !strings.Contains(msg, part) {
			t.Errorf("message %q does not contain %q", msg, part)
		}
	}
	if strings.Contains(msg, "no verifiable signatures") {
		t.Errorf("message %q is the bare note error", msg)
	}
}
