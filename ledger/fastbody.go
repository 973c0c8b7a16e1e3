package ledger

import (
	"strconv"
)

// Fast paths of the statement bodies appended most: access.decided (every
// read), record.registered and record.shredded (every upload and
// shredding) and consent.revoked. They are flat objects of strings, a
// bool and an integer, and encoding/json writes them in struct order,
// leaving out the empty omitempty members, with every string between
// quotes as it is unless it holds a character it escapes.
//
// appendBodyFast writes that layout directly and declines (the caller
// falls back to encoding/json) when any string is not plain: printable
// ASCII without '"' or '\'. So it writes the bytes encoding/json writes
// (TestFastBodiesMatchJSON). decodeBodyFast reads that layout only and
// declines on anything else; decodeStatementFast accepts what it read
// only when the statement it re-encodes is the input byte for byte, as
// the encoding/json path does (TestFastBodiesAgree, TestFastDecodersAgree).

// plainJSON reports whether encoding/json (HTML escaping off) writes s
// between quotes as it is, and every reader decodes it back to s:
// printable ASCII without '"' or '\'.
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// appendJSONString appends s as encoding/json (HTML escaping off) writes
// it.
func appendJSONString(dst []byte, s string) ([]byte, error) {
	if plainJSON(s) {
		dst = append(dst, '"')
		dst = append(dst, s...)
		return append(dst, '"'), nil
	}
	q, err := marshalCompact(s)
	if err != nil {
		return nil, err
	}
	return append(dst, q...), nil
}

// objWriter appends a JSON object's members; ok is false once a string
// was not plain.
type objWriter struct {
	b   []byte
	sep byte // '{' before the first member, ',' after
	ok  bool
}

func newObjWriter(dst []byte) objWriter { return objWriter{b: dst, sep: '{', ok: true} }

// key appends the separator and k, the member's quoted name and colon.
func (w *objWriter) key(k string) {
	w.b = append(w.b, w.sep)
	w.b = append(w.b, k...)
	w.sep = ','
}

func (w *objWriter) str(k, v string) {
	if !w.ok || !plainJSON(v) {
		w.ok = false
		return
	}
	w.key(k)
	w.b = append(w.b, '"')
	w.b = append(w.b, v...)
	w.b = append(w.b, '"')
}

// strOmit is str for an omitempty member.
func (w *objWriter) strOmit(k, v string) {
	if v != "" {
		w.str(k, v)
	}
}

func (w *objWriter) boolean(k string, v bool) {
	w.key(k)
	w.b = strconv.AppendBool(w.b, v)
}

// intOmit is an omitempty integer member.
func (w *objWriter) intOmit(k string, v int64) {
	if v != 0 {
		w.key(k)
		w.b = strconv.AppendInt(w.b, v, 10)
	}
}

func (w *objWriter) end() ([]byte, bool) {
	if !w.ok {
		return nil, false
	}
	if w.sep == '{' {
		w.b = append(w.b, '{')
	}
	return append(w.b, '}'), true
}

// appendBodyFast appends the encoding of a body of one of the fast types,
// or reports false.
func appendBodyFast(dst []byte, body any) ([]byte, bool) {
	w := newObjWriter(dst)
	switch b := body.(type) {
	case *AccessDecidedV2:
		if b == nil {
			return nil, false
		}
		w.str(`"requester":`, b.Requester)
		w.str(`"record_id":`, b.RecordID)
		w.strOmit(`"patient":`, b.Patient)
		w.strOmit(`"category":`, b.Category)
		w.str(`"purpose":`, b.Purpose)
		w.str(`"decision":`, b.Decision)
		w.str(`"reason":`, b.Reason)
		w.strOmit(`"grant_id":`, b.GrantID)
		w.boolean(`"break_glass":`, b.BreakGlass)
		w.strOmit(`"justification_commitment":`, b.JustificationCommitment)
		w.str(`"request_id":`, b.RequestID)
		w.strOmit(`"client_request_id":`, b.ClientRequestID)
	case *RecordRegisteredV2:
		if b == nil {
			return nil, false
		}
		w.str(`"record_id":`, b.RecordID)
		w.str(`"holder":`, b.Holder)
		w.str(`"patient":`, b.Patient)
		w.str(`"category":`, b.Category)
		w.strOmit(`"resource_type":`, b.ResourceType)
		w.str(`"commitment":`, b.Commitment)
		w.strOmit(`"content_type":`, b.ContentType)
		w.intOmit(`"size":`, b.Size)
	case *RecordShreddedV2:
		if b == nil {
			return nil, false
		}
		w.str(`"record_id":`, b.RecordID)
		w.str(`"holder":`, b.Holder)
		w.str(`"patient":`, b.Patient)
	case *ConsentRevokedV2:
		if b == nil {
			return nil, false
		}
		w.str(`"consent_id":`, b.ConsentID)
		w.str(`"patient":`, b.Patient)
	default:
		return nil, false
	}
	return w.end()
}

// objReader reads the members of a JSON object in the layout objWriter
// writes; c.ok is false once the input is not in it.
type objReader struct {
	c   *cursor
	sep byte
}

func newObjReader(b []byte) objReader { return objReader{c: newCursor(b), sep: '{'} }

// at reports whether the separator and k follow.
func (r *objReader) at(k string) bool {
	c := r.c
	return c.ok && len(c.b)-c.i > len(k) && c.b[c.i] == r.sep && string(c.b[c.i+1:c.i+1+len(k)]) == k
}

func (r *objReader) key(k string) {
	if !r.at(k) {
		r.c.ok = false
		return
	}
	r.c.i += 1 + len(k)
	r.sep = ','
}

func (r *objReader) str(k string) string {
	r.key(k)
	r.c.lit(`"`)
	s := r.c.plain()
	r.c.lit(`"`)
	if !r.c.ok || !plainJSON(s) {
		r.c.ok = false
		return ""
	}
	return s
}

// strOmit is str for an omitempty member: "" when it is absent.
func (r *objReader) strOmit(k string) string {
	if r.at(k) {
		return r.str(k)
	}
	return ""
}

func (r *objReader) boolean(k string) bool {
	r.key(k)
	switch {
	case r.c.has("true"):
		r.c.lit("true")
		return true
	case r.c.has("false"):
		r.c.lit("false")
		return false
	}
	r.c.ok = false
	return false
}

// intOmit reads an omitempty integer member: an optional minus and
// digits (a fraction or an exponent declines).
func (r *objReader) intOmit(k string) int64 {
	if !r.at(k) {
		return 0
	}
	r.key(k)
	c := r.c
	if !c.ok {
		return 0
	}
	j := c.i
	if j < len(c.b) && c.b[j] == '-' {
		j++
	}
	digits := j
	for j < len(c.b) && c.b[j] >= '0' && c.b[j] <= '9' {
		j++
	}
	if j == digits {
		c.ok = false
		return 0
	}
	v, err := strconv.ParseInt(string(c.b[c.i:j]), 10, 64)
	if err != nil {
		c.ok = false
		return 0
	}
	c.i = j
	return v
}

func (r *objReader) end() bool {
	if r.sep == '{' {
		r.c.lit("{")
	}
	r.c.lit("}")
	return r.c.end()
}

// decodeBodyFast reads the body of a statement of type t in the layout
// appendBodyFast writes, or reports false.
func decodeBodyFast(t Type, b []byte) (any, bool) {
	r := newObjReader(b)
	var body any
	switch t {
	case TypeAccessDecided:
		v := &AccessDecidedV2{}
		v.Requester = r.str(`"requester":`)
		v.RecordID = r.str(`"record_id":`)
		v.Patient = r.strOmit(`"patient":`)
		v.Category = r.strOmit(`"category":`)
		v.Purpose = r.str(`"purpose":`)
		v.Decision = r.str(`"decision":`)
		v.Reason = r.str(`"reason":`)
		v.GrantID = r.strOmit(`"grant_id":`)
		v.BreakGlass = r.boolean(`"break_glass":`)
		v.JustificationCommitment = r.strOmit(`"justification_commitment":`)
		v.RequestID = r.str(`"request_id":`)
		v.ClientRequestID = r.strOmit(`"client_request_id":`)
		body = v
	case TypeRecordRegistered:
		v := &RecordRegisteredV2{}
		v.RecordID = r.str(`"record_id":`)
		v.Holder = r.str(`"holder":`)
		v.Patient = r.str(`"patient":`)
		v.Category = r.str(`"category":`)
		v.ResourceType = r.strOmit(`"resource_type":`)
		v.Commitment = r.str(`"commitment":`)
		v.ContentType = r.strOmit(`"content_type":`)
		v.Size = r.intOmit(`"size":`)
		body = v
	case TypeRecordShredded:
		v := &RecordShreddedV2{}
		v.RecordID = r.str(`"record_id":`)
		v.Holder = r.str(`"holder":`)
		v.Patient = r.str(`"patient":`)
		body = v
	case TypeConsentRevoked:
		v := &ConsentRevokedV2{}
		v.ConsentID = r.str(`"consent_id":`)
		v.Patient = r.str(`"patient":`)
		body = v
	default:
		return nil, false
	}
	if !r.end() {
		return nil, false
	}
	return body, true
}
