package credential

import (
	"fmt"
	"strings"
)

// Code systems of the code table.
const (
	SystemICD10  = "ICD10"  // ICD-10 / ICD-10-CM diagnosis codes
	SystemGender = "gender" // FHIR administrative-gender
)

// codeShift places the code system ID above every code of any system, so
// that codes of different systems never share a value.
const codeShift = 40

var systemIDs = map[string]uint64{SystemICD10: 1, SystemGender: 2}

var genderCodes = []string{"female", "male", "other", "unknown"} // 1-based

// CodeValue is the code table: it maps a code of a code system to its
// attribute value, systemID·2⁴⁰ + local, where
//
//   - ICD10 (system 1): local is the code without its dot, read as a
//     base-36 number (digits 0–9 then A–Z). A code is a letter, a digit, a
//     digit or letter, then up to four digits or letters (E11, E11.9,
//     C4A.0, S72.001A). "E11.9" → 2⁴⁰ + base36("E119").
//   - gender (system 2): female 1, male 2, other 3, unknown 4.
//
// text may carry the system as a prefix ("ICD10:E11.9"); it must then match.
func CodeValue(system, text string) (uint64, error) {
	sys, ok := systemIDs[system]
	if !ok {
		return 0, fmt.Errorf("%w: unknown code system %q", ErrAttributeValue, system)
	}
	if p, rest, found := strings.Cut(text, ":"); found {
		if !strings.EqualFold(p, system) {
			return 0, fmt.Errorf("%w: code %q is not of system %s", ErrAttributeValue, text, system)
		}
		text = rest
	}
	var local uint64
	switch system {
	case SystemICD10:
		c := strings.ToUpper(strings.Replace(strings.TrimSpace(text), ".", "", 1))
		if !validICD10(c) {
			return 0, fmt.Errorf("%w: %q is not an ICD-10 code", ErrAttributeValue, text)
		}
		for _, r := range c {
			local = local*36 + uint64(strings.IndexRune(base36, r))
		}
	case SystemGender:
		for i, g := range genderCodes {
			if strings.EqualFold(strings.TrimSpace(text), g) {
				local = uint64(i + 1)
			}
		}
		if local == 0 {
			return 0, fmt.Errorf("%w: %q is not one of %s", ErrAttributeValue, text, strings.Join(genderCodes, ", "))
		}
	}
	return sys<<codeShift | local, nil
}

// CodeText is the inverse of CodeValue: it returns "SYSTEM:code".
func CodeText(system string, v uint64) (string, error) {
	sys, ok := systemIDs[system]
	if !ok || v>>codeShift != sys {
		return "", fmt.Errorf("%w: %d is not a %s code", ErrAttributeValue, v, system)
	}
	local := v & (1<<codeShift - 1)
	switch system {
	case SystemICD10:
		var b []byte
		for ; local > 0; local /= 36 {
			b = append([]byte{base36[local%36]}, b...)
		}
		c := string(b)
		if !validICD10(c) {
			return "", fmt.Errorf("%w: %d is not an ICD-10 code", ErrAttributeValue, v)
		}
		if len(c) > 3 {
			c = c[:3] + "." + c[3:]
		}
		return system + ":" + c, nil
	case SystemGender:
		if local >= 1 && local <= uint64(len(genderCodes)) {
			return system + ":" + genderCodes[local-1], nil
		}
	}
	return "", fmt.Errorf("%w: %d is not a %s code", ErrAttributeValue, v, system)
}

const base36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"

func validICD10(c string) bool {
	if len(c) < 3 || len(c) > 7 {
		return false
	}
	for i, r := range c {
		letter := r >= 'A' && r <= 'Z'
		digit := r >= '0' && r <= '9'
		switch {
		case i == 0 && !letter, i == 1 && !digit, i > 1 && !letter && !digit:
			return false
		}
	}
	return true
}
