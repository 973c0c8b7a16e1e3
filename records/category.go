package records

import (
	"maps"
	"slices"
)

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

// sensitiveCategories may be used by any clinical resource type whose
// content may be specially protected (a note, a report, a
// condition may be about mental health as well as about a fracture).
var sensitiveCategories = []Category{CategoryMentalHealth, CategorySexualHealth, CategorySubstanceUse, CategoryGenomics}

// resourceCategories maps each FHIR R4 resource type a record may hold to
// the categories it may be filed under. The sensitive categories are
// allowed wherever the type can carry such content. A resource type
// missing here is not accepted as a record: consent is granted by
// category, so every record must have one that fits. docs/scopes.md
// shows the same table.
var resourceCategories = map[string][]Category{
	// Who the patient is.
	"Patient":       {CategoryDemographics},
	"RelatedPerson": {CategoryDemographics},
	// Allergies.
	"AllergyIntolerance": {CategoryAllergies},
	// Problems and diagnoses.
	"Condition":           append([]Category{CategoryConditions}, sensitiveCategories...),
	"FamilyMemberHistory": append([]Category{CategoryConditions}, sensitiveCategories...),
	// Medications.
	"MedicationRequest":        append([]Category{CategoryMedications}, sensitiveCategories...),
	"MedicationStatement":      append([]Category{CategoryMedications}, sensitiveCategories...),
	"MedicationAdministration": append([]Category{CategoryMedications}, sensitiveCategories...),
	"MedicationDispense":       append([]Category{CategoryMedications}, sensitiveCategories...),
	// Immunizations.
	"Immunization":               {CategoryImmunizations},
	"ImmunizationRecommendation": {CategoryImmunizations},
	// Results: an Observation is a lab result, a vital sign, an imaging
	// or procedure finding, or sensitive (an HIV test, a genetic variant).
	"Observation":       append([]Category{CategoryLabs, CategoryVitals, CategoryImaging, CategoryProcedures}, sensitiveCategories...),
	"DiagnosticReport":  append([]Category{CategoryLabs, CategoryImaging}, sensitiveCategories...),
	"Specimen":          append([]Category{CategoryLabs}, sensitiveCategories...),
	"MolecularSequence": {CategoryGenomics},
	"ImagingStudy":      {CategoryImaging},
	// Care.
	"Procedure":     append([]Category{CategoryProcedures}, sensitiveCategories...),
	"Encounter":     append([]Category{CategoryEncounters}, sensitiveCategories...),
	"EpisodeOfCare": append([]Category{CategoryEncounters}, sensitiveCategories...),
	// Notes and documents. A DocumentReference wraps any clinical
	// document (a discharge letter, a scanned lab report).
	"Composition":        append([]Category{CategoryNotes}, sensitiveCategories...),
	"ClinicalImpression": append([]Category{CategoryNotes}, sensitiveCategories...),
	"CarePlan":           append([]Category{CategoryNotes, CategoryConditions}, sensitiveCategories...),
	"DocumentReference": append([]Category{
		CategoryNotes, CategoryLabs, CategoryImaging, CategoryProcedures, CategoryEncounters,
		CategoryConditions, CategoryMedications, CategoryImmunizations, CategoryAllergies, CategoryVitals,
	}, sensitiveCategories...),
}

// CategoriesFor returns the categories a FHIR resource type may be filed
// under, in documentation order; nil when the type is not accepted as a
// record.
func CategoriesFor(resourceType string) []Category {
	cs, ok := resourceCategories[resourceType]
	if !ok {
		return nil
	}
	var out []Category
	for _, c := range categories {
		if slices.Contains(cs, c) {
			out = append(out, c)
		}
	}
	return out
}

// ResourceTypes returns every FHIR resource type accepted as a record,
// sorted.
func ResourceTypes() []string {
	return slices.Sorted(maps.Keys(resourceCategories))
}

// Fits reports whether a resource of type resourceType may be filed under
// c (a Patient is demographics, not labs).
func (c Category) Fits(resourceType string) bool {
	return slices.Contains(resourceCategories[resourceType], c)
}
