package records

import "errors"

// Errors returned by this package. Callers inspect them with errors.Is;
// the messages of errors wrapping ErrInvalid are safe to show to the
// client that sent the input (they name the problem, never the content).
var (
	// ErrNotFound: no such record, or it is not visible (pending or
	// shredded). Callers must not distinguish "not found" from "not
	// permitted".
	ErrNotFound = errors.New("record not found")
	// ErrInvalid: the request is malformed. Wrapped with a short
	// description of what is wrong.
	ErrInvalid = errors.New("invalid record")
	// ErrTooLarge: the content exceeds the vault's maximum record size.
	ErrTooLarge = errors.New("record too large")
	// ErrDecrypt: a stored record or its wrapped data key failed
	// authentication (tampered, moved to another row, or wrapped under a
	// different key). No plaintext is ever returned with it.
	ErrDecrypt = errors.New("record does not decrypt")
	// ErrNoKey: the key-encryption key (version) an operation needs does
	// not exist.
	ErrNoKey = errors.New("key-encryption key not found")
	// ErrBadKey: a stored key-encryption key is malformed (wrong length,
	// bad encoding, unsafe file mode, or two sources disagree).
	ErrBadKey = errors.New("bad key-encryption key")
	// ErrNoEncryptionKey: an organisation's JWKS has no key that a
	// response can be sealed to (use "enc", ECDH-ES capable).
	ErrNoEncryptionKey = errors.New("no encryption key")
	// ErrCannotCreateKey: rotation needs a new KEK version but the key
	// provider cannot create keys (keys from the environment only).
	ErrCannotCreateKey = errors.New("key provider cannot create keys")
)
