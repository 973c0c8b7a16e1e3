package records

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sync"
)

// The content envelopes. A record's data key is fresh and seals one
// record only, so its nonces need only be distinct within the record.
//
// FormatVersion: nonce (12 random bytes) || AES-256-GCM(content) || tag,
// exactly what crypto/cipher.NewGCMWithRandomNonce writes (records
// written before the streaming format open unchanged).
//
// FormatStream is the STREAM construction of Hoang, Reyhanitabar, Rogaway
// and Vizár ("Online Authenticated-Encryption and its Nonce-Reuse
// Misuse-Resistance", CRYPTO 2015), as age and Tink's streaming AEAD
// instantiate it: the content is cut into chunks of StreamChunkSize bytes
// (the last one shorter, or the only one empty), and chunk i is sealed
// with AES-256-GCM under the nonce
//
//	i as an 88-bit big-endian integer || 0x01 if it is the last chunk, else 0x00
//
// and the record's associated data; the envelope is the sealed chunks
// back to back (each StreamChunkSize+16 bytes, the last one shorter).
// Reordering chunks changes their nonces, dropping the tail leaves a last
// chunk sealed as not last, and appending leaves a chunk sealed as last
// in the middle: every one fails authentication.
const (
	// StreamChunkSize is the plaintext size of every chunk of a
	// FormatStream envelope but the last.
	StreamChunkSize = 64 << 10

	gcmNonceSize    = 12
	gcmTagSize      = 16
	streamChunkSeal = StreamChunkSize + gcmTagSize
)

// ErrStream: a streamed envelope is malformed (truncated, too short, or
// with trailing data after its last chunk). It wraps ErrDecrypt.
var ErrStream = fmt.Errorf("%w: malformed streamed content", ErrDecrypt)

// newContentGCM returns AES-256-GCM with 96-bit nonces given by the caller
// (the content envelopes choose them).
func newContentGCM(dek []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(dek)
	if err != nil {
		return nil, fmt.Errorf("aes: %w", err)
	}
	return cipher.NewGCM(block)
}

// SealedSize returns the size of the envelope of n bytes of content in
// format (FormatVersion or FormatStream), or -1 for another format.
func SealedSize(format, n int) int {
	switch format {
	case FormatVersion:
		return gcmNonceSize + n + gcmTagSize
	case FormatStream:
		return n + streamChunks(n)*gcmTagSize
	}
	return -1
}

// streamChunks is the number of chunks of n bytes of content.
func streamChunks(n int) int { return max(1, (n+StreamChunkSize-1)/StreamChunkSize) }

// plaintextSize is the content size of an envelope of n bytes, or an
// error wrapping ErrDecrypt if no envelope has that size.
func plaintextSize(format, n int) (int, error) {
	switch format {
	case FormatVersion:
		if n < gcmNonceSize+gcmTagSize {
			return 0, fmt.Errorf("%w: content fails authentication", ErrDecrypt)
		}
		return n - gcmNonceSize - gcmTagSize, nil
	case FormatStream:
		full, last := n/streamChunkSeal, n%streamChunkSeal
		switch {
		case last == 0 && full > 0: // the last chunk is a full one
			return full * StreamChunkSize, nil
		case last < gcmTagSize:
			return 0, ErrStream
		}
		return full*StreamChunkSize + last - gcmTagSize, nil
	}
	return 0, fmt.Errorf("%w: unsupported format %d", ErrDecrypt, format)
}

// streamNonce is the nonce of chunk i.
func streamNonce(nonce *[gcmNonceSize]byte, i uint64, last bool) {
	clear(nonce[:3])
	binary.BigEndian.PutUint64(nonce[3:11], i)
	nonce[11] = 0
	if last {
		nonce[11] = 1
	}
}

// sealContent appends the envelope of plaintext in format b.format to
// dst, reallocating only if dst lacks the capacity.
func sealContent(dst []byte, gcm cipher.AEAD, b binding, plaintext []byte) ([]byte, error) {
	ad := contentAD(b)
	size := SealedSize(b.format, len(plaintext))
	if size < 0 {
		return nil, fmt.Errorf("%w: unsupported format %d", ErrBadKey, b.format)
	}
	ret := slices.Grow(dst, size)[:len(dst)+size]
	out := ret[len(dst):]
	if b.format == FormatVersion {
		if _, err := rand.Read(out[:gcmNonceSize]); err != nil {
			return nil, fmt.Errorf("nonce: %w", err)
		}
		gcm.Seal(out[gcmNonceSize:gcmNonceSize], out[:gcmNonceSize], plaintext, ad)
		return ret, nil
	}
	var nonce [gcmNonceSize]byte
	n := streamChunks(len(plaintext))
	for i := range n {
		chunk := plaintext[i*StreamChunkSize : min(len(plaintext), (i+1)*StreamChunkSize)]
		streamNonce(&nonce, uint64(i), i == n-1)
		at := i * streamChunkSeal
		gcm.Seal(out[at:at], nonce[:], chunk, ad)
	}
	return ret, nil
}

// openContent decrypts the envelope ciphertext into out, which has
// exactly the content's size (plaintextSize) and does not overlap
// ciphertext.
func openContent(out []byte, gcm cipher.AEAD, b binding, ciphertext []byte) error {
	ad := contentAD(b)
	if b.format == FormatVersion {
		if _, err := gcm.Open(out[:0], ciphertext[:gcmNonceSize], ciphertext[gcmNonceSize:], ad); err != nil {
			return fmt.Errorf("%w: content fails authentication", ErrDecrypt)
		}
		return nil
	}
	var nonce [gcmNonceSize]byte
	n := streamChunks(len(out))
	for i := range n {
		in := ciphertext[i*streamChunkSeal : min(len(ciphertext), (i+1)*streamChunkSeal)]
		streamNonce(&nonce, uint64(i), i == n-1)
		if _, err := gcm.Open(out[i*StreamChunkSize:i*StreamChunkSize], nonce[:], in, ad); err != nil {
			return fmt.Errorf("%w: content chunk %d fails authentication", ErrDecrypt, i)
		}
	}
	return nil
}

// openContentInPlace decrypts the envelope over itself and returns the
// content, which is within ciphertext's storage. Each chunk is opened
// exactly in place (crypto/cipher allows only exact overlap); the chunks
// of a streamed envelope are then moved down to be contiguous.
func openContentInPlace(gcm cipher.AEAD, b binding, ciphertext []byte) ([]byte, error) {
	ad := contentAD(b)
	if b.format == FormatVersion {
		if len(ciphertext) < gcmNonceSize+gcmTagSize {
			return nil, fmt.Errorf("%w: content fails authentication", ErrDecrypt)
		}
		var nonce [gcmNonceSize]byte
		copy(nonce[:], ciphertext)
		body := ciphertext[gcmNonceSize:]
		pt, err := gcm.Open(body[:0], nonce[:], body, ad)
		if err != nil {
			return nil, fmt.Errorf("%w: content fails authentication", ErrDecrypt)
		}
		return pt, nil
	}
	size, err := plaintextSize(b.format, len(ciphertext))
	if err != nil {
		return nil, err
	}
	var nonce [gcmNonceSize]byte
	n := streamChunks(size)
	for i := range n {
		in := ciphertext[i*streamChunkSeal : min(len(ciphertext), (i+1)*streamChunkSeal)]
		streamNonce(&nonce, uint64(i), i == n-1)
		pt, err := gcm.Open(in[:0], nonce[:], in, ad)
		if err != nil {
			return nil, fmt.Errorf("%w: content chunk %d fails authentication", ErrDecrypt, i)
		}
		copy(ciphertext[i*StreamChunkSize:], pt)
	}
	return ciphertext[:size], nil
}

// SealedContent is one record's sealed content: what a Store keeps.
type SealedContent struct {
	Format int // FormatVersion or FormatStream
	// Pieces is the number of pieces the envelope is kept in
	// (PieceStore.Piece), 0 when Ciphertext holds it whole.
	Pieces     int
	Ciphertext []byte // the content envelope (nil when kept in pieces)
	WrappedKey []byte // the data key, wrapped under the holder's KEK
	KeyVersion int    // the KEK version the data key is wrapped under
}

// SealContent seals plaintext as the content of record r (its ID, holder,
// patient, category, content type and resource type are bound to the
// ciphertext) under a fresh data key wrapped with kek, in format
// (FormatVersion or FormatStream). The ciphertext is appended to dst and
// reuses its storage when cap(dst)-len(dst) is at least
// SealedSize(format, len(plaintext)): callers sealing many records pass
// the same buffer, emptied, and allocate nothing of the content's size.
func SealContent(dst []byte, kek KEK, r Record, format int, plaintext []byte) (SealedContent, error) {
	s, err := sealAppend(dst, kek, bindingOf(format, r), plaintext)
	if err != nil {
		return SealedContent{}, err
	}
	return SealedContent{Format: format, Ciphertext: s.ciphertext, WrappedKey: s.wrappedKey, KeyVersion: s.keyVersion}, nil
}

// OpenContent decrypts content sealed by SealContent for record r with
// kek (the version it is wrapped under), appending the plaintext to dst
// (reused when it has the capacity; it must not overlap s.Ciphertext).
// Any authentication failure is an error wrapping ErrDecrypt, and no
// plaintext is appended.
func OpenContent(dst []byte, kek KEK, r Record, s SealedContent) ([]byte, error) {
	return openAppend(dst, kek, bindingOf(s.Format, r), s.WrappedKey, s.Ciphertext)
}

// chunkPool holds the chunk buffers of StreamWriter and StreamReader.
var chunkPool = sync.Pool{New: func() any { b := make([]byte, streamChunkSeal+1); return &b }}

// StreamWriter seals record content in FormatStream as it is written,
// holding one chunk in memory. Close writes the last chunk; the envelope
// is complete only after Close returns nil.
type StreamWriter struct {
	w       io.Writer
	gcm     cipher.AEAD
	ad      []byte
	buf     *[]byte // one chunk of plaintext, sealed in place
	n       int     // plaintext bytes in buf
	i       uint64  // the next chunk's position
	wrapped []byte
	version int
	err     error
}

// NewStreamWriter returns a writer that seals the content of record r to
// w under a fresh data key wrapped with kek (see WrappedKey).
func NewStreamWriter(w io.Writer, kek KEK, r Record) (*StreamWriter, error) {
	b := bindingOf(FormatStream, r)
	gcm, wrapped, err := newDataKey(kek, b)
	if err != nil {
		return nil, err
	}
	return &StreamWriter{w: w, gcm: gcm, ad: contentAD(b), buf: chunkPool.Get().(*[]byte),
		wrapped: wrapped, version: kek.version}, nil
}

// WrappedKey returns the data key wrapped under the KEK, and its version:
// store them with the envelope.
func (s *StreamWriter) WrappedKey() ([]byte, int) { return s.wrapped, s.version }

// Write seals p a chunk at a time. A chunk is written once the next byte
// arrives (only Close knows which chunk is the last).
func (s *StreamWriter) Write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	written := 0
	for len(p) > 0 {
		if s.n == StreamChunkSize {
			if err := s.flush(false); err != nil {
				return written, err
			}
		}
		k := copy((*s.buf)[s.n:StreamChunkSize], p)
		s.n += k
		written += k
		p = p[k:]
	}
	return written, nil
}

func (s *StreamWriter) flush(last bool) error {
	if s.i == math.MaxUint64 {
		s.err = errors.New("records: stream too long")
		return s.err
	}
	var nonce [gcmNonceSize]byte
	streamNonce(&nonce, s.i, last)
	b := *s.buf
	ct := s.gcm.Seal(b[:0], nonce[:], b[:s.n], s.ad)
	s.i++
	s.n = 0
	if _, err := s.w.Write(ct); err != nil {
		s.err = fmt.Errorf("records: write sealed chunk: %w", err)
		return s.err
	}
	return nil
}

// Close seals and writes the last chunk. It does not close the
// underlying writer.
func (s *StreamWriter) Close() error {
	if s.err != nil {
		return s.err
	}
	err := s.flush(true)
	if err == nil {
		s.err = errors.New("records: stream writer closed")
	}
	clear(*s.buf)
	chunkPool.Put(s.buf)
	s.buf = nil
	return err
}

// discard wipes and releases the writer's buffer without writing
// anything more (after a failure; nothing after Close).
func (s *StreamWriter) discard() {
	if s.buf != nil {
		clear(*s.buf)
		chunkPool.Put(s.buf)
		s.buf = nil
	}
	if s.err == nil {
		s.err = errors.New("records: stream writer discarded")
	}
}

// StreamReader opens a FormatStream envelope as it is read, a chunk at a
// time: Read returns only authenticated content, and io.EOF only after
// the last chunk (sealed as last) authenticated. A truncated, reordered,
// extended or altered envelope gives an error wrapping ErrDecrypt,
// possibly after the content of the chunks before the damage.
type StreamReader struct {
	src  io.Reader
	gcm  cipher.AEAD
	ad   []byte
	buf  *[]byte
	have int    // envelope bytes read into buf
	pt   []byte // authenticated content not yet returned (in buf)
	// carry is the first byte of the next chunk, read to learn that the
	// chunk before was not the last.
	carry    byte
	hasCarry bool
	i        uint64
	done     bool
	err      error
}

// NewStreamReader returns a reader of the content of record r from its
// FormatStream envelope src, with its data key wrapped under kek.
func NewStreamReader(src io.Reader, kek KEK, r Record, wrappedKey []byte) (*StreamReader, error) {
	b := bindingOf(FormatStream, r)
	gcm, err := contentKey(kek, b, wrappedKey)
	if err != nil {
		return nil, err
	}
	return &StreamReader{src: src, gcm: gcm, ad: contentAD(b), buf: chunkPool.Get().(*[]byte)}, nil
}

// Read implements io.Reader.
func (s *StreamReader) Read(p []byte) (int, error) {
	for len(s.pt) == 0 {
		if s.err != nil {
			return 0, s.err
		}
		if s.done {
			s.release()
			s.err = io.EOF
			return 0, io.EOF
		}
		if err := s.next(); err != nil {
			s.release()
			s.err = err
			return 0, err
		}
	}
	n := copy(p, s.pt)
	s.pt = s.pt[n:]
	return n, nil
}

// next reads and opens one chunk: one byte beyond a full chunk tells
// whether it is the last.
func (s *StreamReader) next() error {
	b := *s.buf
	if s.hasCarry {
		b[0], s.have, s.hasCarry = s.carry, 1, false
	}
	n, err := io.ReadFull(s.src, b[s.have:])
	s.have += n
	last := false
	switch {
	case err == nil: // a full chunk and the first byte of the next
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		last = true
	default:
		return fmt.Errorf("records: read sealed content: %w", err)
	}
	size := min(s.have, streamChunkSeal)
	if size < gcmTagSize {
		return ErrStream
	}
	var nonce [gcmNonceSize]byte
	streamNonce(&nonce, s.i, last)
	pt, oerr := s.gcm.Open(b[:0], nonce[:], b[:size], s.ad)
	if oerr != nil {
		return fmt.Errorf("%w: content chunk %d fails authentication", ErrDecrypt, s.i)
	}
	s.i++
	s.pt, s.have, s.done = pt, 0, last
	if !last {
		// The content stays in buf until it is read; the next chunk's
		// first byte waits aside.
		s.carry, s.hasCarry = b[streamChunkSeal], true
	}
	return nil
}

// Close wipes and releases the reader's buffer; reads after it fail. It
// does not close the source.
func (s *StreamReader) Close() error {
	s.release()
	if s.err == nil {
		s.err = errors.New("records: stream reader closed")
	}
	return nil
}

func (s *StreamReader) release() {
	if s.buf != nil {
		clear(*s.buf)
		chunkPool.Put(s.buf)
		s.buf = nil
	}
}

// contentFormat is the format the vault writes n bytes of content in.
func contentFormat(n int) int {
	if n > StreamThreshold {
		return FormatStream
	}
	return FormatVersion
}

// maxPooledEnvelope bounds the envelope buffers kept for reuse, so that a
// burst of large uploads does not pin their memory.
const maxPooledEnvelope = 4 << 20

// bufferPool reuses envelope buffers.
type bufferPool struct{ p sync.Pool }

// envelopePool holds the vault's envelope buffers.
var envelopePool bufferPool

// get returns a buffer of capacity at least n (length 0).
func (p *bufferPool) get(n int) *[]byte {
	if b, ok := p.p.Get().(*[]byte); ok && cap(*b) >= n {
		*b = (*b)[:0]
		return b
	} else if ok {
		p.p.Put(b)
	}
	b := make([]byte, 0, n)
	return &b
}

// put returns b for reuse (it held a ciphertext only: nothing secret).
func (p *bufferPool) put(b *[]byte) {
	if cap(*b) > maxPooledEnvelope {
		return
	}
	*b = (*b)[:0]
	p.p.Put(b)
}
