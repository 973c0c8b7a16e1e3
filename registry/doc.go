// Package registry is the organisation registry: a projection of the
// ledger's org.registered entries into the relational database (gorm,
// SQLite or PostgreSQL). Register appends an entry and waits until the
// projection has applied it; Store answers lookups (auth.OrgSource) and,
// being a ledger.Applier, can be dropped and rebuilt from the log with the
// same result.
package registry
