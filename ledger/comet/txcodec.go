package comet

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
)

// The fast path of the transaction codec. A transaction has one
// encoding, json.Marshal's of its wireTx, so decodeWireTx first reads that
// layout directly (no reflection, no second pass to re-encode through
// encoding/json) and falls back to encoding/json for anything else, as
// the ledger's own codecs do (ledger/fastcodec.go). The fast path never
// decides alone: it accepts only when appendWire, which writes exactly
// json.Marshal's bytes for the values it admits, reproduces the input
// byte for byte, and it declines, leaving the verdict and its error to
// the slow path, on anything it does not recognise. So decodeWireTx
// accepts exactly what the encoding/json path accepts, with the same
// values (TestWireFastAgrees and FuzzParseTx compare both).

// decodeWireTx decodes a canonical transaction: the wireTx whose
// json.Marshal encoding is tx. Anything else is ErrBadTx.
func decodeWireTx(tx []byte) (wireTx, error) {
	if w, ok := decodeWireFast(tx); ok {
		return w, nil
	}
	return decodeWireJSON(tx)
}

// decodeWireJSON is decodeWireTx through encoding/json.
func decodeWireJSON(tx []byte) (wireTx, error) {
	var w wireTx
	dec := json.NewDecoder(bytes.NewReader(tx))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return wireTx{}, fmt.Errorf("%w: %v", ErrBadTx, err)
	}
	again, err := json.Marshal(w)
	if err != nil || !bytes.Equal(again, tx) {
		return wireTx{}, fmt.Errorf("%w: not canonical", ErrBadTx)
	}
	return w, nil
}

// decodeWireFast reads tx in the layout json.Marshal writes for a
// wireTx whose gateway and nonce need no escaping and whose byte fields
// are not empty; ok is false for anything else.
func decodeWireFast(tx []byte) (w wireTx, ok bool) {
	r := wireReader{b: tx, ok: true}
	r.lit(`{"v":`)
	w.Version = r.int()
	r.lit(`,"gateway":"`)
	w.Gateway = r.plain()
	r.lit(`","nonce":"`)
	w.Nonce = r.plain()
	r.lit(`","header":"`)
	w.Header = r.b64()
	r.lit(`"`)
	if r.has(`,"sealed":"`) {
		r.lit(`,"sealed":"`)
		w.Sealed = r.b64()
		r.lit(`"`)
	}
	if r.has(`,"clear":"`) {
		r.lit(`,"clear":"`)
		w.Clear = r.b64()
		r.lit(`"`)
	}
	if r.has(`,"sig":"`) {
		r.lit(`,"sig":"`)
		w.Sig = r.b64()
		r.lit(`"`)
	}
	r.lit(`}`)
	if !r.ok || r.i != len(tx) {
		return wireTx{}, false
	}
	// The canonical check: the layout read back is the input.
	if !bytes.Equal(appendWire(make([]byte, 0, len(tx)), w), tx) {
		return wireTx{}, false
	}
	return w, true
}

// appendWire appends json.Marshal's encoding of w, for a w whose Gateway
// and Nonce hold only characters that JSON does not escape (see
// plainChar) and whose Header is not nil.
func appendWire(dst []byte, w wireTx) []byte {
	dst = append(dst, `{"v":`...)
	dst = strconv.AppendInt(dst, int64(w.Version), 10)
	dst = append(dst, `,"gateway":"`...)
	dst = append(dst, w.Gateway...)
	dst = append(dst, `","nonce":"`...)
	dst = append(dst, w.Nonce...)
	dst = append(dst, `","header":"`...)
	dst = base64.StdEncoding.AppendEncode(dst, w.Header)
	dst = append(dst, '"')
	if len(w.Sealed) > 0 {
		dst = append(dst, `,"sealed":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, w.Sealed)
		dst = append(dst, '"')
	}
	if len(w.Clear) > 0 {
		dst = append(dst, `,"clear":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, w.Clear)
		dst = append(dst, '"')
	}
	if len(w.Sig) > 0 {
		dst = append(dst, `,"sig":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, w.Sig)
		dst = append(dst, '"')
	}
	return append(dst, '}')
}

// encodeWire is json.Marshal(w), through appendWire where it applies.
func encodeWire(w wireTx) ([]byte, error) {
	if w.Header != nil && plainString(w.Gateway) && plainString(w.Nonce) {
		return appendWire(nil, w), nil
	}
	return json.Marshal(w)
}

// wireReader reads the canonical layout of a transaction.
type wireReader struct {
	b  []byte
	i  int
	ok bool
}

func (r *wireReader) lit(s string) {
	if r.ok && len(r.b)-r.i >= len(s) && string(r.b[r.i:r.i+len(s)]) == s {
		r.i += len(s)
		return
	}
	r.ok = false
}

func (r *wireReader) has(s string) bool {
	return r.ok && len(r.b)-r.i >= len(s) && string(r.b[r.i:r.i+len(s)]) == s
}

// int reads a small non-negative decimal integer (the version).
func (r *wireReader) int() int {
	if !r.ok {
		return 0
	}
	j := r.i
	for j < len(r.b) && j-r.i < 9 && r.b[j] >= '0' && r.b[j] <= '9' {
		j++
	}
	if j == r.i {
		r.ok = false
		return 0
	}
	n, err := strconv.Atoi(string(r.b[r.i:j]))
	if err != nil {
		r.ok = false
		return 0
	}
	r.i = j
	return n
}

// plain reads a string body of plainChar characters up to its closing
// quote (not consumed).
func (r *wireReader) plain() string {
	if !r.ok {
		return ""
	}
	for j := r.i; j < len(r.b); j++ {
		ch := r.b[j]
		if ch == '"' {
			s := string(r.b[r.i:j])
			r.i = j
			return s
		}
		if !plainChar(ch) {
			break
		}
	}
	r.ok = false
	return ""
}

// b64 reads a non-empty standard base64 value up to its closing quote
// (not consumed) and decodes it.
func (r *wireReader) b64() []byte {
	if !r.ok {
		return nil
	}
	n := bytes.IndexByte(r.b[r.i:], '"')
	if n <= 0 {
		r.ok = false
		return nil
	}
	text := r.b[r.i : r.i+n]
	// The decoder refuses every character outside the alphabet and
	// padding but for the newlines it skips: decline those.
	if bytes.IndexByte(text, '\n') >= 0 || bytes.IndexByte(text, '\r') >= 0 {
		r.ok = false
		return nil
	}
	out := make([]byte, base64.StdEncoding.DecodedLen(len(text)))
	m, err := base64.StdEncoding.Decode(out, text)
	if err != nil {
		r.ok = false
		return nil
	}
	r.i += n
	return out[:m]
}

// plainChar reports whether json.Marshal writes ch as itself inside a
// string: printable ASCII but for the quote, the backslash and the HTML
// characters it escapes.
func plainChar(ch byte) bool {
	return ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\' && ch != '<' && ch != '>' && ch != '&'
}

func plainString(s string) bool {
	for i := 0; i < len(s); i++ {
		if !plainChar(s[i]) {
			return false
		}
	}
	return true
}
