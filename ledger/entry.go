package ledger

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Type names the kind of an entry. The set is closed: Decode rejects types it
// does not know.
type Type string

// Entry types. Each has exactly one body type (see bodyFor).
const (
	TypeOrgRegistered     Type = "org.registered"
	TypeConsentGranted    Type = "consent.granted"
	TypeConsentRevoked    Type = "consent.revoked"
	TypeRecordRegistered  Type = "record.registered"
	TypeRecordShredded    Type = "record.shredded"
	TypeAccessDecided     Type = "access.decided"
	TypeIssuerRegistered  Type = "issuer.registered"
	TypeCircuitRegistered Type = "circuit.registered"
	TypeProofVerified     Type = "proof.verified"
	// TypePasskeyRegistered registers a patient's passkey (a WebAuthn
	// credential): consents about the patient are then checked against
	// it.
	TypePasskeyRegistered Type = "passkey.registered"
)

// CurrentVersion is the entry format version written by this code.
const CurrentVersion = 1

// MaxEntrySize bounds the canonical encoding of one entry. Larger entries are
// rejected by Encode and Decode. 64 KiB fits the tlog-tiles entry bundle's
// 16-bit length prefix.
const MaxEntrySize = 65535

// Entry is one ledger entry. Index is not part of an entry: it is the
// position the log assigned.
type Entry struct {
	Type    Type
	Version int
	// Org is the submitting organisation (the authenticated principal that
	// caused the entry), or "patient:<pseudonym>" for patient actions, or
	// "gateway" for the gateway's own entries.
	Org string
	// Author is the gateway that wrote and signed the entry (set when
	// the entry is read; Append sets its own).
	Author string
	// Attestations are the entry's attestations (a patient's passkey
	// assertion over its commitment), as read; Node.AppendPrepared
	// writes them. Their digest is signed in the header.
	Attestations []Attestation
	// Commitment is the entry's v2 commitment (what attestations sign),
	// as read.
	Commitment Digest
	// Time is assigned by the log when the entry becomes durable (the block
	// time on the consortium backend). Callers leave it zero on Append.
	Time time.Time
	// Body is a pointer to the body struct that matches Type, e.g.
	// *ConsentGranted for TypeConsentGranted.
	Body any
}

// Errors returned by Encode and Decode.
var (
	ErrMalformed    = errors.New("ledger: malformed entry")
	ErrNonCanonical = errors.New("ledger: entry is not in canonical form")
	ErrUnknownType  = errors.New("ledger: unknown entry type")
	ErrTooLarge     = errors.New("ledger: entry too large")
)

// wireEntry is the canonical JSON shape of an entry.
type wireEntry struct {
	Type    Type            `json:"type"`
	Version int             `json:"v"`
	Org     string          `json:"org"`
	Time    string          `json:"time"`
	Body    json.RawMessage `json:"body"`
}

// timeFormat is RFC 3339 in UTC with exactly nine fractional digits, so a
// time has exactly one encoding.
const timeFormat = "2006-01-02T15:04:05.000000000Z"

// NewEntry returns an entry of the type that matches body's Go type.
func NewEntry(org string, body any) (Entry, error) {
	t, ok := typeOf(body)
	if !ok {
		return Entry{}, fmt.Errorf("%w: body %T", ErrUnknownType, body)
	}
	return Entry{Type: t, Version: CurrentVersion, Org: org, Body: body}, nil
}

// Encode returns the canonical encoding of e: compact JSON with the fields
// in a fixed order (type, v, org, time, body), the body's fields in the
// order of its Go struct, times in UTC with nine fractional digits, and no
// insignificant white space. Decode accepts exactly the bytes Encode
// produces and nothing else.
func Encode(e Entry) ([]byte, error) {
	want, ok := typeOf(e.Body)
	if !ok || want != e.Type {
		return nil, fmt.Errorf("%w: type %q with body %T", ErrUnknownType, e.Type, e.Body)
	}
	if e.Version != CurrentVersion {
		return nil, fmt.Errorf("%w: version %d", ErrMalformed, e.Version)
	}
	body, err := marshalCompact(e.Body)
	if err != nil {
		return nil, fmt.Errorf("%w: body: %v", ErrMalformed, err)
	}
	b, err := marshalCompact(wireEntry{
		Type:    e.Type,
		Version: e.Version,
		Org:     e.Org,
		Time:    e.Time.UTC().Format(timeFormat),
		Body:    body,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(b) > MaxEntrySize {
		return nil, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(b))
	}
	return b, nil
}

// Decode parses the canonical encoding of an entry. It rejects unknown
// types and fields, trailing data, and any encoding that is not the one
// Encode would produce for the decoded value.
func Decode(b []byte) (Entry, error) {
	if len(b) > MaxEntrySize {
		return Entry{}, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(b))
	}
	var w wireEntry
	if err := strictUnmarshal(b, &w); err != nil {
		return Entry{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	body := bodyFor(w.Type)
	if body == nil {
		return Entry{}, fmt.Errorf("%w: %q", ErrUnknownType, w.Type)
	}
	if err := strictUnmarshal(w.Body, body); err != nil {
		return Entry{}, fmt.Errorf("%w: body: %v", ErrMalformed, err)
	}
	t, err := time.Parse(timeFormat, w.Time)
	if err != nil {
		return Entry{}, fmt.Errorf("%w: time: %v", ErrMalformed, err)
	}
	e := Entry{Type: w.Type, Version: w.Version, Org: w.Org, Time: t, Body: body}
	again, err := Encode(e)
	if err != nil {
		return Entry{}, err
	}
	if !bytes.Equal(again, b) {
		return Entry{}, ErrNonCanonical
	}
	return e, nil
}

func marshalCompact(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data")
	}
	if _, err := dec.Token(); err == nil {
		return errors.New("trailing data")
	}
	return nil
}
