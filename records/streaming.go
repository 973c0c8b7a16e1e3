package records

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"

	"github.com/healthgw/healthgw/ledger"
)

// DefaultMaxStreamSize is the default largest record content a streamed
// upload (PutStream) accepts, in bytes (1 GiB).
const DefaultMaxStreamSize = 1 << 30

// PieceSize is the size of every piece of a streamed record's envelope
// but the last (PieceStore): 16 sealed STREAM chunks, a little over
// 1 MiB. Pieces hold whole chunks.
const PieceSize = 16 * streamChunkSeal

// piecesPerWrite is how many pieces a streamed upload stores per
// transaction: a commit's flush to disk is most of a piece's cost, and
// 4 pieces are the upload's only buffer (4 MiB).
const piecesPerWrite = 4

// ErrInlineTooLarge: a record is larger than an answer that carries its
// content whole (Read) may be (Options.MaxSize); it is served streamed
// only (ReadStream).
var ErrInlineTooLarge = errors.New("record too large to answer inline")

// ErrUploadTimeout: a streamed upload took longer than
// Options.PendingTimeout; nothing of it is kept.
var ErrUploadTimeout = errors.New("records: the upload took too long")

// ErrNoPieceStore: the vault's store keeps no content in pieces
// (PieceStore), which a streamed upload of more than StreamThreshold
// bytes needs.
var ErrNoPieceStore = errors.New("records: the store keeps no streamed content")

// MaxStreamSize returns the largest record content PutStream accepts.
func (v *Vault) MaxStreamSize() int64 { return v.opts.MaxStreamSize }

// PutStream is Put of content read from content as it arrives, for
// records too large to hold in memory: r.Content must be nil.
//
// Content of up to StreamThreshold bytes (and FHIR JSON, which is read
// whole, up to MaxSize, and validated) is stored as Put stores it. Larger
// content is sealed in FormatStream a chunk at a time and stored in
// pieces of PieceSize bytes as it is sealed (PieceStore), each piece
// written on its own, so that neither the vault nor the database holds
// the record whole or a write lock for the upload's length; its
// commitment is the SHA-256 of the whole envelope, as Put's. The record
// is pending, and invisible, until its registration is durable, as with
// Put.
//
// It is refused, and nothing is kept, when the content is empty, more
// than MaxStreamSize bytes arrive (ErrTooLarge), r.ContentSHA256 is set
// and the content's SHA-256 differs (ErrInvalid), reading content fails
// (its error, wrapped: an *http.MaxBytesError stays findable with
// errors.As), ctx ends, or the upload takes longer than
// Options.PendingTimeout (which bounds how long an unfinished upload can
// be: Recover deletes older ones). A pending record and its pieces are
// deleted on every such failure; if that deletion fails too, Recover
// deletes them.
//
// Repeating it with r.ID set is as safe as repeating Put: a record of
// that ID whose upload finished is Put's case (returned, or its
// registration looked for and submitted again; the content is not read
// again), and one whose upload never finished (the process ended during
// it) is deleted and uploaded afresh.
func (v *Vault) PutStream(ctx context.Context, r PutRequest, content io.Reader) (Record, error) {
	if r.Content != nil {
		return Record{}, errors.New("records: PutStream: the content comes from the reader, not PutRequest.Content")
	}
	ct, err := v.validateMeta(r)
	if err != nil {
		return Record{}, err
	}
	if r.ID != "" {
		if !validID(r.ID) {
			return Record{}, fmt.Errorf("records: put: %q is not a record ID", r.ID)
		}
		s, err := v.store.Meta(ctx, r.ID)
		switch {
		case err == nil && s.Pending && s.Commitment == "":
			// An upload that never finished: its registration was never
			// submitted. Start again.
			if err := v.store.DeletePending(ctx, r.ID); err != nil && !errors.Is(err, ErrNotFound) {
				return Record{}, fmt.Errorf("records: put: delete the unfinished upload: %w", err)
			}
		case err == nil:
			return v.resume(ctx, r, s)
		case !errors.Is(err, ErrNotFound):
			return Record{}, fmt.Errorf("records: put: %w", err)
		}
	}
	ctx, cancel := context.WithTimeoutCause(ctx, v.opts.PendingTimeout,
		fmt.Errorf("%w: it took longer than %v", ErrUploadTimeout, v.opts.PendingTimeout))
	defer cancel()
	src := &limitedReader{ctx: ctx, r: content, left: v.opts.MaxStreamSize + 1}
	var sum hash.Hash
	if r.ContentSHA256 != nil {
		sum = sha256.New()
		src.sum = sum
	}
	// The head: content that fits in it is a record as Put stores it.
	headMax := int64(StreamThreshold)
	if IsFHIR(ct) {
		headMax = v.opts.MaxSize // FHIR JSON is validated whole
	}
	// Room for the head and bytes.MinRead more, so that ReadFrom never
	// grows the buffer just to learn that the head is all there is.
	buf := bytes.NewBuffer(make([]byte, 0, min(headMax, StreamThreshold)+1+bytes.MinRead))
	_, err = buf.ReadFrom(io.LimitReader(src, headMax+1))
	head := buf.Bytes()
	defer func() { clear(head[:cap(head)]) }()
	if err != nil {
		return Record{}, fmt.Errorf("records: read the content: %w", err)
	}
	switch {
	case int64(len(head)) <= min(headMax, v.opts.MaxSize):
		// That is all of it (headMax < MaxStreamSize+1, the reader's
		// limit): Put's case.
		if sum != nil && !bytes.Equal(sum.Sum(nil), r.ContentSHA256) {
			return Record{}, errDigestMismatch
		}
		r.Content, r.ContentSHA256 = head, nil // checked, on what was read
		return v.Put(ctx, r)
	case IsFHIR(ct):
		return Record{}, inputErrorf(ErrTooLarge, "FHIR JSON content is read whole: at most %d bytes", v.opts.MaxSize)
	}
	return v.putPieces(ctx, r, ct, head, src, sum)
}

// putPieces is PutStream of content larger than its head: head, then the
// rest of src.
func (v *Vault) putPieces(ctx context.Context, r PutRequest, ct string, head []byte, src *limitedReader, sum hash.Hash) (Record, error) {
	ps, ok := v.store.(PieceStore)
	if !ok {
		return Record{}, ErrNoPieceStore
	}
	rec, kek, err := v.newRecord(ctx, r, ct, r.ResourceType)
	if err != nil {
		return Record{}, err
	}
	buf := make([]byte, 0, piecesPerWrite*PieceSize) // sealed: nothing secret
	pw := &pieceWriter{ctx: ctx, store: ps, id: rec.ID, hash: sha256.New(), buf: &buf}
	sw, err := NewStreamWriter(pw, kek, rec)
	if err != nil {
		return Record{}, fmt.Errorf("records: seal: %w", err)
	}
	defer sw.discard()
	wrapped, _ := sw.WrappedKey()
	err = v.store.Create(ctx, Stored{Record: rec, Format: FormatStream, WrappedKey: wrapped, Pending: true})
	if err != nil {
		return Record{}, fmt.Errorf("records: store: %w", err)
	}
	// From here every failure deletes the pending record and its pieces.
	size, err := v.sealPieces(sw, pw, head, src)
	if err == nil && sum != nil && !bytes.Equal(sum.Sum(nil), r.ContentSHA256) {
		err = errDigestMismatch
	}
	if err == nil {
		rec.Size = size
		rec.Commitment = hex.EncodeToString(pw.hash.Sum(nil))
		err = ps.FinishPieces(ctx, rec.ID, rec.Size, rec.Commitment, pw.seq)
	}
	var entry ledger.Entry
	if err == nil {
		entry, err = registration(rec)
	}
	if err != nil {
		v.deleteUnfinished(ctx, rec.ID)
		return Record{}, err
	}
	return v.register(ctx, rec, entry)
}

// sealPieces seals head and then the rest of src into sw, whose pieces
// pw stores, and returns the content's size.
func (v *Vault) sealPieces(sw *StreamWriter, pw *pieceWriter, head []byte, src *limitedReader) (int64, error) {
	if _, err := sw.Write(head); err != nil {
		return 0, err
	}
	n, err := io.Copy(sw, src)
	size := int64(len(head)) + n
	switch {
	case err != nil && src.err != nil:
		return 0, fmt.Errorf("records: read the content: %w", err)
	case err != nil:
		return 0, err
	case src.left <= 0:
		return 0, inputErrorf(ErrTooLarge, "more than %d bytes; the limit for a streamed record is %d", v.opts.MaxStreamSize, v.opts.MaxStreamSize)
	}
	if err := sw.Close(); err != nil {
		return 0, err
	}
	if err := pw.flush(); err != nil {
		return 0, err
	}
	return size, nil
}

// deleteUnfinished deletes the pending record id of a streamed upload
// that failed, with its pieces, even if ctx has ended.
func (v *Vault) deleteUnfinished(ctx context.Context, id string) {
	fctx, cancel := finishContext(ctx)
	defer cancel()
	if err := v.store.DeletePending(fctx, id); err != nil && !errors.Is(err, ErrNotFound) {
		// Recover deletes it after PendingTimeout.
		v.opts.Logger.Warn("records: delete the pending record of a failed streamed upload",
			slog.String("record_id", id), slog.Any("error", err))
	}
}

// limitedReader reads r until left bytes were read (then it reports
// io.EOF: left is 0 when the content was longer than the limit minus
// one), hashing what it reads into sum when set, and stops with ctx's
// cause once ctx ends. err is r's own error, if it failed.
type limitedReader struct {
	ctx  context.Context
	r    io.Reader
	left int64
	sum  hash.Hash
	err  error
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if err := l.ctx.Err(); err != nil {
		return 0, context.Cause(l.ctx)
	}
	if l.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if l.sum != nil {
		l.sum.Write(p[:n])
	}
	if err != nil && !errors.Is(err, io.EOF) {
		l.err = err
	}
	return n, err
}

// pieceWriter stores the envelope written to it in pieces of PieceSize
// bytes (the last one shorter), piecesPerWrite at a time, and hashes it.
type pieceWriter struct {
	ctx   context.Context
	store PieceStore
	id    string
	hash  hash.Hash
	buf   *[]byte // the pieces being filled, back to back
	seq   int     // the next piece's number; the count, once flushed
}

func (w *pieceWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		k := min(len(p), piecesPerWrite*PieceSize-len(*w.buf))
		*w.buf = append(*w.buf, p[:k]...)
		p, written = p[k:], written+k
		if len(*w.buf) == piecesPerWrite*PieceSize {
			if err := w.flush(); err != nil {
				return written, err
			}
		}
	}
	return written, nil
}

// flush stores the pieces being filled, if they have any bytes.
func (w *pieceWriter) flush() error {
	b := *w.buf
	if len(b) == 0 {
		return nil
	}
	w.hash.Write(b)
	var pieces [][]byte
	for len(b) > 0 {
		k := min(len(b), PieceSize)
		pieces, b = append(pieces, b[:k]), b[k:]
	}
	if err := w.store.AppendPieces(w.ctx, w.id, w.seq, pieces); err != nil {
		if w.ctx.Err() != nil {
			return context.Cause(w.ctx)
		}
		return fmt.Errorf("records: store: %w", err)
	}
	w.seq += len(pieces)
	*w.buf = (*w.buf)[:0]
	return nil
}

// ReadStream is Read returning the content as a reader, decrypted as it
// is read, a chunk at a time: only authenticated content is returned, and
// io.EOF only after the whole record authenticated (a damaged record gives
// an error wrapping ErrDecrypt, possibly after some content; a record
// shredded during the read, ErrNotFound). A streamed record is read a
// piece at a time (PieceStore.Piece), never whole. The caller must close
// the reader. Up to authorize, and what authorize decides, it is Read.
func (v *Vault) ReadStream(ctx context.Context, id string, authorize func(Record) error) (Record, io.ReadCloser, error) {
	s, sc, kek, err := v.permitted(ctx, id, authorize, false)
	if err != nil {
		return Record{}, nil, err
	}
	if sc.Pieces == 0 {
		pt, err := openInPlace(kek, bindingOf(s.Format, s.Record), sc.WrappedKey, sc.Ciphertext)
		if err != nil {
			return Record{}, nil, fmt.Errorf("records: open %s: %w", id, err)
		}
		return s.Record, io.NopCloser(bytes.NewReader(pt)), nil
	}
	ps, ok := v.store.(PieceStore)
	if !ok {
		return Record{}, nil, ErrNoPieceStore
	}
	sr, err := NewStreamReader(&pieceReader{ctx: ctx, store: ps, id: id, n: sc.Pieces}, kek, s.Record, sc.WrappedKey)
	if err != nil {
		return Record{}, nil, fmt.Errorf("records: open %s: %w", id, err)
	}
	return s.Record, sr, nil
}

// loadPieces returns the envelope of s, kept in n pieces, whole.
func (v *Vault) loadPieces(ctx context.Context, s Stored, n int) ([]byte, error) {
	ps, ok := v.store.(PieceStore)
	if !ok {
		return nil, ErrNoPieceStore
	}
	size := SealedSize(FormatStream, int(s.Size))
	out := make([]byte, 0, size)
	for seq := range n {
		var err error
		out, err = ps.Piece(ctx, s.ID, seq, out)
		if errors.Is(err, ErrNotFound) {
			return nil, ErrNotFound // shredded since the metadata was read
		}
		if err != nil {
			return nil, fmt.Errorf("records: read %s: %w", s.ID, err)
		}
		if len(out) > size {
			return nil, fmt.Errorf("records: open %s: %w: the pieces are longer than the record", s.ID, ErrDecrypt)
		}
	}
	return out, nil
}

// pieceReader reads the n pieces of a streamed record's envelope in
// order, one in memory at a time (in buf, reused).
type pieceReader struct {
	ctx   context.Context
	store PieceStore
	id    string
	n     int
	seq   int
	buf   []byte
	cur   []byte // what is left of the piece in buf
}

func (r *pieceReader) Read(p []byte) (int, error) {
	for len(r.cur) == 0 {
		if r.seq == r.n {
			return 0, io.EOF
		}
		piece, err := r.store.Piece(r.ctx, r.id, r.seq, r.buf[:0])
		if err != nil {
			return 0, err
		}
		r.buf, r.cur = piece, piece
		r.seq++
	}
	k := copy(p, r.cur)
	r.cur = r.cur[k:]
	return k, nil
}
