package records

import (
	"context"
	"errors"
	"io"
)

// DefaultMaxStreamSize is the default largest record content a streamed
// upload (PutStream) accepts, in bytes (1 GiB).
const DefaultMaxStreamSize = 1 << 30

// ErrInlineTooLarge: a record is larger than an answer that carries its
// content whole (Read) may be (Options.MaxSize); it is served streamed
// only (ReadStream).
var ErrInlineTooLarge = errors.New("record too large to answer inline")

// MaxStreamSize returns the largest record content PutStream accepts.
func (v *Vault) MaxStreamSize() int64 { return v.opts.MaxStreamSize }

// PutStream is Put of content read from content as it arrives, for
// records too large to hold in memory: r.Content must be nil. The content
// is sealed in FormatStream a chunk at a time and stored in pieces
// (ChunkStore); no buffer of the content's size is ever held. It is
// refused (ErrTooLarge, nothing kept) once more than MaxStreamSize bytes
// arrive, and (ErrInvalid, nothing kept) if it is empty, if
// r.ContentSHA256 is set and the content's SHA-256 differs, or if content
// fails to read (the error is returned wrapped, nothing kept). FHIR JSON
// content is read whole (up to MaxSize) and validated as Put does.
// Repeating it with r.ID set is as safe as repeating Put.
func (v *Vault) PutStream(ctx context.Context, r PutRequest, content io.Reader) (Record, error) {
	return Record{}, errors.New("records: PutStream: not built yet")
}

// ReadStream is Read returning the content as a reader, decrypted as it
// is read, a chunk at a time: only authenticated content is returned, and
// io.EOF only after the whole record authenticated (a damaged record gives
// an error wrapping ErrDecrypt, possibly after some content). The caller
// must close it. Up to authorize, and what authorize decides, it is Read.
func (v *Vault) ReadStream(ctx context.Context, id string, authorize func(Record) error) (Record, io.ReadCloser, error) {
	return Record{}, nil, errors.New("records: ReadStream: not built yet")
}
