package circuits

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/healthgw/healthgw/circuits/credential"
	"github.com/healthgw/healthgw/circuits/member"
)

// ErrParams reports statement parameters that are missing or malformed.
var ErrParams = errors.New("invalid statement parameters")

// Params are a verifier's policy for one statement: which attribute, and
// the predicate's public constants. Only the fields of the statement are
// used.
type Params struct {
	Schema    *credential.Schema // nil means credential.PatientV1
	Attribute string             // attribute name in Schema

	Cutoff credential.Day // Age: attribute ≤ Cutoff (see credential.AgeCutoff)
	Lo, Hi uint64         // Range: Lo ≤ attribute ≤ Hi, encoded attribute values

	// Member: the set's Merkle root. Set is needed by the prover (for the
	// path) and optional for a verifier; when both are given they must
	// agree.
	Root credential.Element
	Set  *member.Set
}

func (p Params) schema() *credential.Schema {
	if p.Schema == nil {
		return credential.PatientV1
	}
	return p.Schema
}

// Parameter keys of the map form (ledger proof.verified params, challenge
// files). Values are in text form: dates YYYY-MM-DD, decimals "6.5", codes
// "ICD10:E11.9"; see credential.Schema.Encode.
const (
	KeySchema    = "schema"    // schema name; default healthgw/patient/v1
	KeyAttribute = "attribute" // attribute name
	KeyCutoff    = "cutoff"    // age: latest date (inclusive)
	KeyLo        = "lo"        // range: lower bound (inclusive)
	KeyHi        = "hi"        // range: upper bound (inclusive)
	KeyRoot      = "root"      // member: hex Merkle root
	KeySet       = "set"       // member: comma-separated values
)

// ParseParams reads the map form of parameters for statement s and
// validates them.
func ParseParams(s Statement, m map[string]string) (Params, error) {
	if err := s.valid(); err != nil {
		return Params{}, err
	}
	allowed := map[Statement][]string{
		Age:    {KeySchema, KeyAttribute, KeyCutoff},
		Range:  {KeySchema, KeyAttribute, KeyLo, KeyHi},
		Member: {KeySchema, KeyAttribute, KeyRoot, KeySet},
	}[s]
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if !slices.Contains(allowed, k) {
			return Params{}, fmt.Errorf("%w: %s does not take %q", ErrParams, s, k)
		}
	}
	var p Params
	if name, ok := m[KeySchema]; ok {
		sc, err := credential.SchemaByName(name)
		if err != nil {
			return Params{}, fmt.Errorf("%w: %w", ErrParams, err)
		}
		p.Schema = sc
	}
	p.Attribute = m[KeyAttribute]
	spec, err := p.schema().Spec(p.Attribute)
	if err != nil {
		return Params{}, fmt.Errorf("%w: %w", ErrParams, err)
	}
	need := func(k string) (string, error) {
		v, ok := m[k]
		if !ok {
			return "", fmt.Errorf("%w: %s needs %q", ErrParams, s, k)
		}
		return v, nil
	}
	encode := func(k string) (uint64, error) {
		text, err := need(k)
		if err != nil {
			return 0, err
		}
		v, err := spec.Encode(text)
		if err != nil {
			return 0, fmt.Errorf("%w: %s: %w", ErrParams, k, err)
		}
		return v, nil
	}
	switch s {
	case Age:
		text, err := need(KeyCutoff)
		if err != nil {
			return Params{}, err
		}
		if p.Cutoff, err = credential.ParseDay(text); err != nil {
			return Params{}, fmt.Errorf("%w: cutoff: %w", ErrParams, err)
		}
	case Range:
		if p.Lo, err = encode(KeyLo); err != nil {
			return Params{}, err
		}
		if p.Hi, err = encode(KeyHi); err != nil {
			return Params{}, err
		}
	case Member:
		rootText, hasRoot := m[KeyRoot]
		setText, hasSet := m[KeySet]
		if !hasRoot && !hasSet {
			return Params{}, fmt.Errorf("%w: member needs %q or %q", ErrParams, KeyRoot, KeySet)
		}
		if hasSet {
			var vs []uint64
			for _, t := range strings.Split(setText, ",") {
				v, err := spec.Encode(t)
				if err != nil {
					return Params{}, fmt.Errorf("%w: set: %w", ErrParams, err)
				}
				vs = append(vs, v)
			}
			if p.Set, err = member.NewSet(vs); err != nil {
				return Params{}, fmt.Errorf("%w: %w", ErrParams, err)
			}
			p.Root = p.Set.Root()
		}
		if hasRoot {
			root, err := credential.ParseElement(rootText)
			if err != nil {
				return Params{}, fmt.Errorf("%w: root: %w", ErrParams, err)
			}
			if hasSet && !root.Equal(&p.Root) {
				return Params{}, fmt.Errorf("%w: root does not match set", ErrParams)
			}
			p.Root = root
		}
	}
	if err := p.Validate(s); err != nil {
		return Params{}, err
	}
	return p, nil
}

// Map returns the map form of p for statement s (the inverse of
// ParseParams). For Member it holds the root and, when known, the set.
func (p Params) Map(s Statement) map[string]string {
	sc := p.schema()
	spec, _ := sc.Spec(p.Attribute)
	m := map[string]string{KeySchema: sc.Name, KeyAttribute: p.Attribute}
	switch s {
	case Age:
		m[KeyCutoff] = p.Cutoff.String()
	case Range:
		m[KeyLo] = spec.Format(p.Lo)
		m[KeyHi] = spec.Format(p.Hi)
	case Member:
		m[KeyRoot] = credential.FormatElement(p.Root)
		if p.Set != nil {
			var ts []string
			for _, v := range p.Set.Values() {
				ts = append(ts, spec.Format(v))
			}
			m[KeySet] = strings.Join(ts, ",")
		}
	}
	return m
}

// Equal reports whether p and q are the same policy for statement s,
// comparing what a proof of s binds: schema, attribute and the
// statement's constants. A member set is not compared, only its root: a
// set and its root are the same policy, and proof files carry only the
// root (sets can be long).
func (p Params) Equal(s Statement, q Params) bool {
	a, b := p.Map(s), q.Map(s)
	delete(a, KeySet)
	delete(b, KeySet)
	return maps.Equal(a, b)
}

// Validate checks p for statement s: the attribute exists (and is a date
// for Age), bounds are ordered and below Absent, and the set agrees with
// the root.
func (p Params) Validate(s Statement) error {
	if err := s.valid(); err != nil {
		return err
	}
	sc := p.schema()
	spec, err := sc.Spec(p.Attribute)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrParams, err)
	}
	switch s {
	case Age:
		if spec.Kind != credential.KindDate {
			return fmt.Errorf("%w: age needs a date attribute, %s is %s", ErrParams, p.Attribute, spec.Kind)
		}
		if p.Cutoff > credential.MaxDay {
			return fmt.Errorf("%w: cutoff: %w", ErrParams, credential.ErrDate)
		}
	case Range:
		if p.Lo > p.Hi || p.Hi >= credential.Absent {
			return fmt.Errorf("%w: range needs lo ≤ hi < 2⁶⁴−1", ErrParams)
		}
	case Member:
		if p.Set != nil {
			r := p.Set.Root()
			if !r.Equal(&p.Root) {
				return fmt.Errorf("%w: root does not match set", ErrParams)
			}
		}
		if p.Root.IsZero() {
			return fmt.Errorf("%w: member needs a root", ErrParams)
		}
	}
	return nil
}
