package consent

import (
	"fmt"
	"regexp"
	"slices"
	"time"
)

// Limits on a grant (see Validate).
const (
	// DefaultMaxPeriod bounds NotAfter-NotBefore when Rules.MaxPeriod is 0.
	DefaultMaxPeriod = 10 * 365 * 24 * time.Hour
	// MaxListItems bounds each of Actions, Categories, RecordIDs,
	// ResourceTypes and Purposes.
	MaxListItems = 64
)

// Absolute bounds on a grant's period: times outside these are mistakes,
// and inside them every time has an exact int64 nanosecond form.
var (
	minTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

var (
	idPattern           = regexp.MustCompile(`^cns_[0-9a-f]{32}$`)
	pseudonymPattern    = regexp.MustCompile(`^ps_[0-9a-f]{64}$`)
	orgIDPattern        = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,62}$`) // as auth.Org.Validate
	recordIDPattern     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)
	resourceTypePattern = regexp.MustCompile(`^[A-Z][A-Za-z]{1,63}$`)
)

// ValidID reports whether s has the form of a consent ID (see NewID).
func ValidID(s string) bool { return idPattern.MatchString(s) }

// ValidPseudonym reports whether s has the form of a patient pseudonym
// (see ledger.Pseudonymizer).
func ValidPseudonym(s string) bool { return pseudonymPattern.MatchString(s) }

// Rules are the inputs of Validate that come from outside this package.
type Rules struct {
	// ValidCategory reports whether a record category is in the records
	// vocabulary. nil rejects every category.
	ValidCategory func(string) bool
	// MaxPeriod bounds NotAfter-NotBefore; 0 means DefaultMaxPeriod.
	MaxPeriod time.Duration
	// Now, when set, requires NotAfter to be after it: a grant that has
	// already expired is a mistake.
	Now time.Time
}

// ValidationError is a grant field that failed Validate. Field is the
// field's JSON name in the API (and the ledger); Message is safe to show to
// the caller. It wraps ErrInvalidGrant.
type ValidationError struct {
	Field   string
	Message string
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("consent: invalid grant: %s: %s", e.Field, e.Message)
}

// Unwrap returns ErrInvalidGrant.
func (e *ValidationError) Unwrap() error { return ErrInvalidGrant }

// PublicMessage is the text a transport may show the caller: the field
// and what is wrong with it, without this package's prefix.
func (e *ValidationError) PublicMessage() string { return e.Field + ": " + e.Message + "." }

func invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// Validate checks what a patient asks for in a new grant: the ID and
// pseudonym formats, exactly one grantee, the closed vocabularies (effect,
// actions, purposes, and categories through r.ValidCategory), the syntax of
// record IDs and resource types, list sizes and duplicates, and the period.
// A permit must name at least one purpose; a deny may leave purposes empty
// to deny every purpose. The ledger state fields are not checked (the
// projection sets them). Whether the grantee organisation exists is for the
// caller to check against the registry.
//
// Errors are *ValidationError, wrapping ErrInvalidGrant.
func (g Grant) Validate(r Rules) error {
	if !ValidID(g.ID) {
		return invalid("id", "must be cns_ followed by 32 lowercase hex digits")
	}
	if !ValidPseudonym(g.Patient) {
		return invalid("patient", "must be a patient pseudonym (ps_ followed by 64 lowercase hex digits)")
	}
	switch {
	case (g.Grantee.Org == "") == (g.Grantee.Kind == ""):
		return invalid("grantee", "exactly one of org and kind is required")
	case g.Grantee.Org != "" && !orgIDPattern.MatchString(g.Grantee.Org):
		return invalid("grantee.org", "must be an organisation ID (2-63 characters of a-z, 0-9 and '-')")
	case g.Grantee.Kind != "" && !g.Grantee.Kind.Valid():
		return invalid("grantee.kind", "must be one of hospital, verifier, regulator")
	}
	if !g.Effect.Valid() {
		return invalid("decision", "must be permit or deny")
	}
	if len(g.Actions) == 0 {
		return invalid("actions", "at least one action is required")
	}
	if err := checkList("actions", g.Actions, func(a Action) bool { return a.Valid() }, "read"); err != nil {
		return err
	}
	validCategory := r.ValidCategory
	if validCategory == nil {
		validCategory = func(string) bool { return false }
	}
	if err := checkList("categories", g.Categories, validCategory, "a record category"); err != nil {
		return err
	}
	if err := checkList("record_ids", g.RecordIDs, recordIDPattern.MatchString, "a record ID (1-128 characters of A-Z, a-z, 0-9 and . _ : -)"); err != nil {
		return err
	}
	if err := checkList("resource_types", g.ResourceTypes, resourceTypePattern.MatchString, "a FHIR resource type name"); err != nil {
		return err
	}
	if g.Effect == Permit && len(g.Purposes) == 0 {
		return invalid("purposes", "a permit needs at least one purpose of use")
	}
	if err := checkList("purposes", g.Purposes, func(p Purpose) bool { return p.Valid() }, "one of TREAT, ETREAT, HPAYMT, HOPERAT, HRESCH, PUBHLTH"); err != nil {
		return err
	}
	return g.validatePeriod(r)
}

func (g Grant) validatePeriod(r Rules) error {
	maxPeriod := r.MaxPeriod
	if maxPeriod <= 0 {
		maxPeriod = DefaultMaxPeriod
	}
	switch {
	case g.NotBefore.IsZero():
		return invalid("not_before", "is required")
	case g.NotAfter.IsZero():
		return invalid("not_after", "is required")
	case g.NotBefore.Before(minTime) || g.NotBefore.After(maxTime):
		return invalid("not_before", "must be between 2000 and 2200")
	case g.NotAfter.Before(minTime) || g.NotAfter.After(maxTime):
		return invalid("not_after", "must be between 2000 and 2200")
	case !g.NotAfter.After(g.NotBefore):
		return invalid("not_after", "must be after not_before")
	case g.NotAfter.Sub(g.NotBefore) > maxPeriod:
		return invalid("not_after", "the period must not be longer than %s", humanDuration(maxPeriod))
	case !r.Now.IsZero() && !g.NotAfter.After(r.Now):
		return invalid("not_after", "must be in the future")
	}
	return nil
}

// checkList checks a list's size, its items and that no item repeats.
func checkList[T comparable](field string, list []T, valid func(T) bool, want string) error {
	if len(list) > MaxListItems {
		return invalid(field, "at most %d items", MaxListItems)
	}
	for i, v := range list {
		if !valid(v) {
			return invalid(field, "item %d must be %s", i, want)
		}
		if slices.Index(list, v) != i {
			return invalid(field, "item %d repeats an earlier item", i)
		}
	}
	return nil
}

func humanDuration(d time.Duration) string {
	const day = 24 * time.Hour
	if d%day == 0 {
		return fmt.Sprintf("%d days", d/day)
	}
	return d.String()
}
