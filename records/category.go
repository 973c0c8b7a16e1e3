package records

import "slices"

// Category classifies a record for consent. The vocabulary is closed:
// consent grants name categories, and a record outside it could not be
// granted or denied precisely.
type Category string

// The category vocabulary. The sensitive categories (see Sensitive) are
// those that law or policy commonly protects beyond ordinary health data
// (for example 42 CFR Part 2 for substance use); consent may require them
// to be named explicitly rather than covered by a broad grant.
const (
	// CategoryDemographics: identity and contact details, next of kin
	// (FHIR Patient, RelatedPerson).
	CategoryDemographics Category = "demographics"
	// CategoryAllergies: allergies and intolerances (AllergyIntolerance).
	CategoryAllergies Category = "allergies"
	// CategoryConditions: problems and diagnoses (Condition).
	CategoryConditions Category = "conditions"
	// CategoryMedications: prescriptions, dispensing and administration
	// (MedicationRequest, MedicationStatement, …).
	CategoryMedications Category = "medications"
	// CategoryImmunizations: vaccinations (Immunization).
	CategoryImmunizations Category = "immunizations"
	// CategoryLabs: laboratory results (Observation with category
	// laboratory, DiagnosticReport).
	CategoryLabs Category = "labs"
	// CategoryVitals: vital signs (Observation with category vital-signs).
	CategoryVitals Category = "vitals"
	// CategoryImaging: imaging studies and reports (ImagingStudy, DICOM).
	CategoryImaging Category = "imaging"
	// CategoryProcedures: procedures performed (Procedure).
	CategoryProcedures Category = "procedures"
	// CategoryEncounters: visits and admissions (Encounter).
	CategoryEncounters Category = "encounters"
	// CategoryNotes: clinical notes and documents (DocumentReference,
	// Composition).
	CategoryNotes Category = "notes"
	// CategoryMentalHealth: mental-health records. Sensitive.
	CategoryMentalHealth Category = "mental-health"
	// CategorySexualHealth: sexual and reproductive health, including HIV
	// and STI results. Sensitive.
	CategorySexualHealth Category = "sexual-health"
	// CategorySubstanceUse: substance-use disorder treatment. Sensitive.
	CategorySubstanceUse Category = "substance-use"
	// CategoryGenomics: genetic and genomic data. Sensitive.
	CategoryGenomics Category = "genomics"
)

// categories lists the vocabulary in documentation order.
var categories = []Category{
	CategoryDemographics, CategoryAllergies, CategoryConditions,
	CategoryMedications, CategoryImmunizations, CategoryLabs, CategoryVitals,
	CategoryImaging, CategoryProcedures, CategoryEncounters, CategoryNotes,
	CategoryMentalHealth, CategorySexualHealth, CategorySubstanceUse,
	CategoryGenomics,
}

// Categories returns every category, in documentation order.
func Categories() []Category { return slices.Clone(categories) }

// ValidCategory reports whether s names a category of the vocabulary.
func ValidCategory(s string) bool { return Category(s).Valid() }

// Valid reports whether c is in the vocabulary.
func (c Category) Valid() bool { return slices.Contains(categories, c) }

// Sensitive reports whether c is one of the specially protected
// categories: mental-health, sexual-health, substance-use, genomics.
func (c Category) Sensitive() bool {
	switch c {
	case CategoryMentalHealth, CategorySexualHealth, CategorySubstanceUse, CategoryGenomics:
		return true
	}
	return false
}
