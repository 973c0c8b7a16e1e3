package records

import (
	"context"
	"fmt"
)

// CheckKEK reports whether keys hold the key-encryption key that w (one
// of holder's stored data keys) is wrapped under: an error wrapping
// ErrNoKey when the version is missing, ErrBadKey when it is unusable, or
// ErrDecrypt when it is another key. Start-up checks one data key of every
// version a database uses, so that a missing or replaced KEK file is
// found before any record is written under a new one.
func CheckKEK(ctx context.Context, keys KeyProvider, holder string, w WrappedKey) error {
	if !supportedFormat(w.Format) {
		return fmt.Errorf("%w: record %s: unsupported format %d", ErrDecrypt, w.ID, w.Format)
	}
	kek, err := keys.Key(ctx, holder, w.KeyVersion)
	if err != nil {
		return err
	}
	dek, err := unwrap(kek, w.Format, w.ID, w.Wrapped)
	clear(dek)
	return err
}
