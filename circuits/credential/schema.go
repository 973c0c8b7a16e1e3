package credential

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// NumAttributes is the fixed number of attributes in every credential.
const NumAttributes = 8

// Absent marks an attribute the issuer does not assert. It fails every
// predicate: it is above every age cutoff and range bound, and no member
// set may contain it.
const Absent uint64 = math.MaxUint64

// Attributes is the fixed vector of attribute values, in schema order.
type Attributes [NumAttributes]uint64

// Kind says how an attribute's integer value is read.
type Kind int

// The attribute kinds.
const (
	KindDate    Kind = iota + 1 // Day: days since 1900-01-01
	KindDecimal                 // decimal value × Scale
	KindInteger                 // plain non-negative integer
	KindCode                    // coded value, see CodeValue
)

func (k Kind) String() string {
	switch k {
	case KindDate:
		return "date"
	case KindDecimal:
		return "decimal"
	case KindInteger:
		return "integer"
	case KindCode:
		return "code"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// AttributeSpec names and types one slot of the attribute vector.
type AttributeSpec struct {
	Name        string
	Kind        Kind
	Scale       uint64 // decimal kinds: value = round(decimal × Scale); a power of ten
	Unit        string
	System      string // code kinds: the code system, see CodeValue
	Description string
}

// Schema is a documented layout of the attribute vector. Its ID is signed
// into every credential and is a public input of every statement, so a
// verifier always knows which attribute an index names.
type Schema struct {
	ID         uint64
	Name       string
	Attributes [NumAttributes]AttributeSpec
}

// PatientV1 is the schema "healthgw/patient/v1" (ID 1).
//
//	index name         kind     encoding
//	0     birth_date   date     days since 1900-01-01
//	1     sex          code     administrative-gender: female 1, male 2, other 3, unknown 4
//	2     hba1c        decimal  HbA1c in % (NGSP) × 100; 6.5 % → 650
//	3     ldl          integer  LDL cholesterol in mg/dL
//	4     bmi          decimal  body-mass index in kg/m² × 10; 31.4 → 314
//	5     diagnosis    code     primary diagnosis, ICD-10 (see CodeValue)
//	6     systolic_bp  integer  systolic blood pressure in mmHg
//	7     last_visit   date     days since 1900-01-01
var PatientV1 = &Schema{
	ID:   1,
	Name: "healthgw/patient/v1",
	Attributes: [NumAttributes]AttributeSpec{
		{Name: "birth_date", Kind: KindDate, Description: "date of birth"},
		{Name: "sex", Kind: KindCode, System: SystemGender, Description: "administrative gender"},
		{Name: "hba1c", Kind: KindDecimal, Scale: 100, Unit: "%", Description: "haemoglobin A1c (NGSP)"},
		{Name: "ldl", Kind: KindInteger, Unit: "mg/dL", Description: "LDL cholesterol"},
		{Name: "bmi", Kind: KindDecimal, Scale: 10, Unit: "kg/m2", Description: "body-mass index"},
		{Name: "diagnosis", Kind: KindCode, System: SystemICD10, Description: "primary diagnosis"},
		{Name: "systolic_bp", Kind: KindInteger, Unit: "mmHg", Description: "systolic blood pressure"},
		{Name: "last_visit", Kind: KindDate, Description: "date of the last encounter"},
	},
}

// Schemas lists the known schemas.
func Schemas() []*Schema { return []*Schema{PatientV1} }

// ErrUnknownSchema reports a schema name or ID that is not known.
var ErrUnknownSchema = errors.New("unknown schema")

// ErrUnknownAttribute reports an attribute name not in the schema.
var ErrUnknownAttribute = errors.New("unknown attribute")

// ErrAttributeValue reports an attribute value that cannot be encoded.
var ErrAttributeValue = errors.New("invalid attribute value")

// SchemaByName returns the schema called name.
func SchemaByName(name string) (*Schema, error) {
	for _, s := range Schemas() {
		if s.Name == name {
			return s, nil
		}
	}
	return nil, fmt.Errorf("%q: %w", name, ErrUnknownSchema)
}

// SchemaByID returns the schema with the given ID.
func SchemaByID(id uint64) (*Schema, error) {
	for _, s := range Schemas() {
		if s.ID == id {
			return s, nil
		}
	}
	return nil, fmt.Errorf("id %d: %w", id, ErrUnknownSchema)
}

// Index returns the position of the attribute called name.
func (s *Schema) Index(name string) (int, error) {
	for i, a := range s.Attributes {
		if a.Name == name {
			return i, nil
		}
	}
	return 0, fmt.Errorf("%q in %s: %w", name, s.Name, ErrUnknownAttribute)
}

// Spec returns the specification of the attribute called name.
func (s *Schema) Spec(name string) (AttributeSpec, error) {
	i, err := s.Index(name)
	if err != nil {
		return AttributeSpec{}, err
	}
	return s.Attributes[i], nil
}

// Encode converts the text form of attribute name to its integer value:
// "1990-04-01" for dates, "6.5" for decimals, "130" for integers,
// "E11.9" or "ICD10:E11.9" for ICD-10 codes, "female" for gender.
func (s *Schema) Encode(name, text string) (uint64, error) {
	spec, err := s.Spec(name)
	if err != nil {
		return 0, err
	}
	v, err := spec.Encode(text)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	return v, nil
}

// Format converts the integer value of attribute name to its text form.
func (s *Schema) Format(name string, v uint64) (string, error) {
	spec, err := s.Spec(name)
	if err != nil {
		return "", err
	}
	return spec.Format(v), nil
}

// Parse encodes attributes given by name in text form; attributes not given
// are Absent.
func (s *Schema) Parse(values map[string]string) (Attributes, error) {
	var a Attributes
	for i := range a {
		a[i] = Absent
	}
	for name, text := range values {
		i, err := s.Index(name)
		if err != nil {
			return a, err
		}
		if a[i], err = s.Attributes[i].Encode(text); err != nil {
			return a, fmt.Errorf("%s: %w", name, err)
		}
	}
	return a, nil
}

// Encode converts text to the attribute's integer value.
func (a AttributeSpec) Encode(text string) (uint64, error) {
	text = strings.TrimSpace(text)
	switch a.Kind {
	case KindDate:
		d, err := ParseDay(text)
		if err != nil {
			return 0, fmt.Errorf("%w: %w", ErrAttributeValue, err)
		}
		return uint64(d), nil
	case KindDecimal:
		return parseDecimal(text, a.Scale)
	case KindInteger:
		v, err := strconv.ParseUint(text, 10, 64)
		if err != nil || v == Absent {
			return 0, fmt.Errorf("%w: %q is not a non-negative integer", ErrAttributeValue, text)
		}
		return v, nil
	case KindCode:
		return CodeValue(a.System, text)
	}
	return 0, fmt.Errorf("%w: attribute kind %s", ErrAttributeValue, a.Kind)
}

// Format converts the attribute's integer value to text; Absent formats as
// "absent".
func (a AttributeSpec) Format(v uint64) string {
	if v == Absent {
		return "absent"
	}
	switch a.Kind {
	case KindDate:
		if v <= uint64(MaxDay) {
			return Day(v).String()
		}
	case KindDecimal:
		return formatDecimal(v, a.Scale)
	case KindCode:
		if s, err := CodeText(a.System, v); err == nil {
			return s
		}
	}
	return strconv.FormatUint(v, 10)
}

// parseDecimal reads a non-negative decimal such as "6.5" as an integer
// scaled by scale (a power of ten); more fractional digits than scale
// allows are an error, not rounded silently.
func parseDecimal(text string, scale uint64) (uint64, error) {
	digits := 0
	for s := scale; s > 1; s /= 10 {
		if s%10 != 0 {
			return 0, fmt.Errorf("%w: scale %d is not a power of ten", ErrAttributeValue, scale)
		}
		digits++
	}
	whole, frac, _ := strings.Cut(text, ".")
	if whole == "" || len(frac) > digits {
		return 0, fmt.Errorf("%w: %q is not a decimal with at most %d fractional digits", ErrAttributeValue, text, digits)
	}
	frac += strings.Repeat("0", digits-len(frac))
	// ParseUint refuses signs, so negative values are errors too.
	v, err := strconv.ParseUint(whole+frac, 10, 64)
	if err != nil || v == Absent {
		return 0, fmt.Errorf("%w: %q is not a non-negative decimal in range", ErrAttributeValue, text)
	}
	return v, nil
}

func formatDecimal(v, scale uint64) string {
	if scale <= 1 {
		return strconv.FormatUint(v, 10)
	}
	whole, frac := v/scale, v%scale
	width := len(strconv.FormatUint(scale, 10)) - 1
	f := strings.TrimRight(fmt.Sprintf("%0*d", width, frac), "0")
	if f == "" {
		return strconv.FormatUint(whole, 10)
	}
	return strconv.FormatUint(whole, 10) + "." + f
}
