package credential

import (
	"errors"
	"testing"
)

func TestEncodeFormat(t *testing.T) {
	for _, tc := range []struct {
		attr, text string
		want       uint64
		format     string
	}{
		{"birth_date", "1990-04-01", 32962, "1990-04-01"},
		{"hba1c", "6.5", 650, "6.5"},
		{"hba1c", "14", 1400, "14"},
		{"hba1c", "7.25", 725, "7.25"},
		{"bmi", "31.4", 314, "31.4"},
		{"ldl", "130", 130, "130"},
		{"sex", "female", 2<<40 | 1, "gender:female"},
		{"sex", "gender:Unknown", 2<<40 | 4, "gender:unknown"},
		{"diagnosis", "E11.9", 1<<40 | (14*36*36*36 + 1*36*36 + 1*36 + 9), "ICD10:E11.9"},
		{"diagnosis", "icd10:e11", 1<<40 | (14*36*36 + 1*36 + 1), "ICD10:E11"},
		{"diagnosis", "S72.001A", 0, "ICD10:S72.001A"},
	} {
		t.Run(tc.attr+"="+tc.text, func(t *testing.T) {
			got, err := PatientV1.Encode(tc.attr, tc.text)
			if err != nil {
				t.Fatal(err)
			}
			if tc.want != 0 && got != tc.want {
				t.Errorf("Encode = %d, want %d", got, tc.want)
			}
			f, err := PatientV1.Format(tc.attr, got)
			if err != nil {
				t.Fatal(err)
			}
			if f != tc.format {
				t.Errorf("Format = %q, want %q", f, tc.format)
			}
			back, err := PatientV1.Encode(tc.attr, f)
			if err != nil || back != got {
				t.Errorf("Encode(Format) = %d, %v, want %d", back, err, got)
			}
		})
	}
}

func TestEncodeErrors(t *testing.T) {
	for _, tc := range []struct {
		attr, text string
		want       error
	}{
		{"height", "180", ErrUnknownAttribute},
		{"hba1c", "6.555", ErrAttributeValue},
		{"hba1c", "-1", ErrAttributeValue},
		{"hba1c", "abc", ErrAttributeValue},
		{"hba1c", ".5", ErrAttributeValue},
		{"ldl", "18446744073709551615", ErrAttributeValue}, // Absent
		{"ldl", "1e3", ErrAttributeValue},
		{"sex", "f", ErrAttributeValue},
		{"diagnosis", "11.9", ErrAttributeValue},
		{"diagnosis", "EE1.9", ErrAttributeValue},
		{"diagnosis", "E11.12345", ErrAttributeValue},
		{"diagnosis", "SNOMED:44054006", ErrAttributeValue},
		{"birth_date", "1850-01-01", ErrAttributeValue},
	} {
		t.Run(tc.attr+"="+tc.text, func(t *testing.T) {
			if _, err := PatientV1.Encode(tc.attr, tc.text); !errors.Is(err, tc.want) {
				t.Fatalf("error = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestParseAttributes(t *testing.T) {
	a, err := PatientV1.Parse(map[string]string{"ldl": "99", "diagnosis": "E10.9"})
	if err != nil {
		t.Fatal(err)
	}
	for i, spec := range PatientV1.Attributes {
		switch spec.Name {
		case "ldl":
			if a[i] != 99 {
				t.Errorf("ldl = %d", a[i])
			}
		case "diagnosis":
			if a[i] == Absent {
				t.Error("diagnosis absent")
			}
		default:
			if a[i] != Absent {
				t.Errorf("%s = %d, want Absent", spec.Name, a[i])
			}
		}
	}
	if _, err := SchemaByName("nope"); !errors.Is(err, ErrUnknownSchema) {
		t.Errorf("SchemaByName: %v", err)
	}
	if s, err := SchemaByID(1); err != nil || s != PatientV1 {
		t.Errorf("SchemaByID(1) = %v, %v", s, err)
	}
}
