package ledger

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Checkpoint errors. OpenCheckpoint wraps one of these; callers inspect
// them with errors.Is.
var (
	// ErrBadCheckpoint: the bytes are not a C2SP checkpoint in a signed note.
	ErrBadCheckpoint = errors.New("ledger: malformed checkpoint")
	// ErrBadSignature: the note carries no valid signature by the expected
	// key (forged, wrong key, or unsigned).
	ErrBadSignature = errors.New("ledger: checkpoint signature not valid")
	// ErrWrongOrigin: the checkpoint was signed for another log.
	ErrWrongOrigin = errors.New("ledger: checkpoint origin does not match")
)

// Checkpoint is a parsed C2SP checkpoint: the log's origin line, its size
// and the RFC 6962 root hash of the tree of that size.
type Checkpoint struct {
	Origin string
	Size   uint64
	Hash   tlog.Hash
}

// SignCheckpoint formats c as a C2SP checkpoint
// (github.com/transparency-dev/formats/log) and signs it as a note with s.
func SignCheckpoint(c Checkpoint, s note.Signer) ([]byte, error) {
	body := log.Checkpoint{Origin: c.Origin, Size: c.Size, Hash: c.Hash[:]}.Marshal()
	msg, err := note.Sign(&note.Note{Text: string(body)}, s)
	if err != nil {
		return nil, fmt.Errorf("sign checkpoint: %w", err)
	}
	return msg, nil
}

// OpenCheckpoint checks that raw is a note signed by v and parses its text
// as a checkpoint. When origin is not empty the checkpoint's origin line
// must equal it. Signatures by other keys are ignored.
func OpenCheckpoint(raw []byte, v note.Verifier, origin string) (Checkpoint, error) {
	n, err := note.Open(raw, note.VerifierList(v))
	if err != nil {
		var unverified *note.UnverifiedNoteError
		var invalid *note.InvalidSignatureError
		if errors.As(err, &unverified) {
			return Checkpoint{}, newSignatureError(v, unverified.Note)
		}
		if errors.As(err, &invalid) {
			return Checkpoint{}, &SignatureError{Expected: KeyID(v.Name(), v.KeyHash()), Found: []string{KeyID(invalid.Name, invalid.Hash)}, Invalid: true}
		}
		return Checkpoint{}, fmt.Errorf("%w: %v", ErrBadCheckpoint, err)
	}
	c, err := parseCheckpointText(n.Text)
	if err != nil {
		return Checkpoint{}, err
	}
	if origin != "" && c.Origin != origin {
		return Checkpoint{}, fmt.Errorf("%w: got %q, want %q", ErrWrongOrigin, c.Origin, origin)
	}
	return c, nil
}

// KeyID names a note key as "<name>+<hash>" (the hash in hex, as in a
// verifier key).
func KeyID(name string, hash uint32) string { return fmt.Sprintf("%s+%08x", name, hash) }

// SignatureError is a checkpoint without a valid signature by the expected
// key. It names the key expected and the keys that did sign, so that a
// wrong key is told apart from a forged checkpoint. It matches
// ErrBadSignature.
type SignatureError struct {
	Expected string   // KeyID of the expected key
	Found    []string // KeyIDs of the signatures the note carries
	Invalid  bool     // a signature by the expected key's name and hash did not verify
}

func (e *SignatureError) Error() string {
	switch {
	case e.Invalid:
		return fmt.Sprintf("%v: the signature by %s does not verify (forged or altered checkpoint)", ErrBadSignature, e.Expected)
	case len(e.Found) == 0:
		return fmt.Sprintf("%v: expected a signature by %s, the checkpoint carries none", ErrBadSignature, e.Expected)
	default:
		return fmt.Sprintf("%v: expected a signature by %s, the checkpoint is signed by %s (a different key: check which key you passed)",
			ErrBadSignature, e.Expected, strings.Join(e.Found, ", "))
	}
}

// Is reports whether target is ErrBadSignature.
func (e *SignatureError) Is(target error) bool { return target == ErrBadSignature }

func newSignatureError(v note.Verifier, n *note.Note) *SignatureError {
	e := &SignatureError{Expected: KeyID(v.Name(), v.KeyHash())}
	if n != nil {
		for _, s := range n.UnverifiedSigs {
			e.Found = append(e.Found, KeyID(s.Name, s.Hash))
		}
	}
	return e
}

// ParseCheckpoint parses a signed checkpoint note WITHOUT checking any
// signature. It is for display and for logs whose key is not known; use
// OpenCheckpoint to trust a checkpoint.
func ParseCheckpoint(raw []byte) (Checkpoint, error) {
	n, err := note.Open(raw, nil)
	if err != nil {
		var unverified *note.UnverifiedNoteError
		if !errors.As(err, &unverified) {
			return Checkpoint{}, fmt.Errorf("%w: %v", ErrBadCheckpoint, err)
		}
		n = unverified.Note
	}
	return parseCheckpointText(n.Text)
}

func parseCheckpointText(text string) (Checkpoint, error) {
	var c log.Checkpoint
	// Extension lines after the hash are allowed by C2SP and ignored.
	if _, err := c.Unmarshal([]byte(text)); err != nil {
		return Checkpoint{}, fmt.Errorf("%w: %v", ErrBadCheckpoint, err)
	}
	if len(c.Hash) != tlog.HashSize {
		return Checkpoint{}, fmt.Errorf("%w: root hash is %d bytes", ErrBadCheckpoint, len(c.Hash))
	}
	if c.Size > 1<<62 {
		return Checkpoint{}, fmt.Errorf("%w: size %d out of range", ErrBadCheckpoint, c.Size)
	}
	out := Checkpoint{Origin: c.Origin, Size: c.Size}
	copy(out.Hash[:], c.Hash)
	return out, nil
}

// CheckpointHistory is implemented by logs that keep the checkpoints they
// published, so that an old one can be served by size.
type CheckpointHistory interface {
	// CheckpointAt returns the signed checkpoint of exactly size entries.
	// It MUST return ErrNotFound if no checkpoint of that size was
	// published.
	CheckpointAt(ctx context.Context, size uint64) ([]byte, error)
}

// CheckpointWaiter is implemented by logs that can publish a checkpoint on
// demand, so that a receipt does not wait for the next periodic one.
type CheckpointWaiter interface {
	// WaitCheckpoint returns a signed checkpoint whose size is at least
	// size, publishing one if needed. It MUST return ErrNotFound if size
	// exceeds the log's size.
	WaitCheckpoint(ctx context.Context, size uint64) ([]byte, error)
}
