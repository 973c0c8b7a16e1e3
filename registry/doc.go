// Package registry is the organisation registry's domain: the
// organisation type (Org, with its Kind and Scopes and their vocabulary),
// its validation and canonical form, and Register, which appends an
// org.registered entry and waits until the projection has applied it.
// The projection itself (gorm) is package registry/registrystore; package
// auth aliases these types for token code.
package registry
