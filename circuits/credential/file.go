package credential

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
)

// File formats. A credential file is what the issuer hands the patient app
// (and what POST /v1/credentials returns):
//
//	{
//	  "format": "healthgw-credential/v2",
//	  "issuer": "<hex compressed issuer public key>",
//	  "schema": "healthgw/patient/v1",
//	  "holder": "<hex holder commitment>",
//	  "attributes": {"birth_date": "32963", "hba1c": "720"},
//	  "expiry": "2027-12-31",
//	  "signature": "<hex, 64 bytes: R compressed ‖ S>"
//	}
//
// Attribute values are the signed integers in decimal (see the schema for
// their meaning); attributes not listed are Absent. A holder secret file
// is kept by the patient app only:
//
//	{"format": "healthgw-holder-secret/v1", "secret": "<hex>", "holder": "<hex commitment>"}
const (
	CredentialFormat = "healthgw-credential/v2"
	// credentialFormatV1 is the format of credentials signed over the
	// unpacked message of circuit version 1; their signatures do not
	// verify under the v2 message, so they must be reissued.
	credentialFormatV1 = "healthgw-credential/v1"
	SecretFormat       = "healthgw-holder-secret/v1"
)

// ErrFile reports a malformed credential or secret file.
var ErrFile = errors.New("malformed file")

// ErrCredentialFormat reports a credential file in an older format, which
// the issuer must reissue.
var ErrCredentialFormat = errors.New("credential format no longer supported")

type credentialJSON struct {
	Format     string            `json:"format"`
	Issuer     string            `json:"issuer"`
	Schema     string            `json:"schema"`
	Holder     string            `json:"holder"`
	Attributes map[string]string `json:"attributes"`
	Expiry     string            `json:"expiry"`
	Signature  string            `json:"signature"`
}

// MarshalCredential encodes c in the credential file format.
func MarshalCredential(c *Credential) ([]byte, error) {
	if c == nil || c.Schema == nil {
		return nil, fmt.Errorf("%w: incomplete credential", ErrFile)
	}
	j := credentialJSON{
		Format:     CredentialFormat,
		Issuer:     c.Issuer.String(),
		Schema:     c.Schema.Name,
		Holder:     FormatElement(c.Holder),
		Attributes: map[string]string{},
		Expiry:     c.Expiry.String(),
		Signature:  hex.EncodeToString(c.Signature),
	}
	for i, v := range c.Attributes {
		if v != Absent {
			j.Attributes[c.Schema.Attributes[i].Name] = strconv.FormatUint(v, 10)
		}
	}
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("marshal credential: %w", err)
	}
	return append(b, '\n'), nil
}

// ParseCredential decodes a credential file. It checks the encoding and
// the issuer's signature.
func ParseCredential(data []byte) (*Credential, error) {
	var j credentialJSON
	if err := decodeStrict(data, &j); err != nil {
		return nil, err
	}
	if j.Format == credentialFormatV1 {
		return nil, fmt.Errorf("%w: %w: format %q is no longer accepted (the signed message changed with circuit version 2); ask the issuer to reissue the credential", ErrFile, ErrCredentialFormat, j.Format)
	}
	if j.Format != CredentialFormat {
		return nil, fmt.Errorf("%w: format %q, want %q", ErrFile, j.Format, CredentialFormat)
	}
	var c Credential
	var err error
	if c.Issuer, err = ParsePublicKey(j.Issuer); err != nil {
		return nil, fmt.Errorf("%w: issuer: %w", ErrFile, err)
	}
	if c.Schema, err = SchemaByName(j.Schema); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFile, err)
	}
	if c.Holder, err = ParseElement(j.Holder); err != nil {
		return nil, fmt.Errorf("%w: holder: %w", ErrFile, err)
	}
	for i := range c.Attributes {
		c.Attributes[i] = Absent
	}
	for _, name := range slices.Sorted(maps.Keys(j.Attributes)) {
		i, err := c.Schema.Index(name)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrFile, err)
		}
		v, err := strconv.ParseUint(j.Attributes[name], 10, 64)
		if err != nil || v == Absent {
			return nil, fmt.Errorf("%w: attribute %s: not an integer below 2⁶⁴−1", ErrFile, name)
		}
		c.Attributes[i] = v
	}
	if c.Expiry, err = ParseDay(j.Expiry); err != nil {
		return nil, fmt.Errorf("%w: expiry: %w", ErrFile, err)
	}
	if c.Signature, err = hex.DecodeString(j.Signature); err != nil {
		return nil, fmt.Errorf("%w: signature: %w", ErrFile, err)
	}
	if err := c.Verify(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFile, err)
	}
	return &c, nil
}

type secretJSON struct {
	Format string `json:"format"`
	Secret string `json:"secret"`
	Holder string `json:"holder"`
}

// MarshalSecret encodes s in the holder secret file format, with its
// holder commitment for convenience.
func MarshalSecret(s Secret) ([]byte, error) {
	if s.e.IsZero() {
		return nil, ErrSecret
	}
	b, err := json.MarshalIndent(secretJSON{
		Format: SecretFormat,
		Secret: FormatElement(s.e),
		Holder: FormatElement(s.Commitment()),
	}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("marshal secret: %w", err)
	}
	return append(b, '\n'), nil
}

// ParseSecret decodes a holder secret file. If the file names a holder
// commitment, it must be the secret's.
func ParseSecret(data []byte) (Secret, error) {
	var j secretJSON
	if err := decodeStrict(data, &j); err != nil {
		return Secret{}, err
	}
	if j.Format != SecretFormat {
		return Secret{}, fmt.Errorf("%w: format %q, want %q", ErrFile, j.Format, SecretFormat)
	}
	e, err := ParseElement(j.Secret)
	if err != nil {
		return Secret{}, fmt.Errorf("%w: secret: %w", ErrFile, err)
	}
	s, err := SecretFromElement(e)
	if err != nil {
		return Secret{}, fmt.Errorf("%w: %w", ErrFile, err)
	}
	if j.Holder != "" {
		h, err := ParseElement(j.Holder)
		c := s.Commitment()
		if err != nil || !h.Equal(&c) {
			return Secret{}, fmt.Errorf("%w: holder commitment does not match the secret", ErrFile)
		}
	}
	return s, nil
}

// decodeStrict decodes one JSON object, refusing unknown fields and
// trailing data.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %w", ErrFile, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: trailing data", ErrFile)
	}
	return nil
}

// DecodeStrict is the strict JSON decoding used by every healthgw zk file
// parser: one object, no unknown fields, no trailing data.
func DecodeStrict(data []byte, v any) error { return decodeStrict(data, v) }
