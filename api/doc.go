// Package api is healthgw's HTTP transport: the gin router, middleware
// (request IDs, body limits, panic recovery, metrics, authentication and
// per-route kind and scope checks), request and response types with
// Validate methods, and the one error boundary that maps error kinds to
// status codes and public messages. Handlers read, validate, call a
// use-case service (package access for the gated read and consent
// changes) and render the wire types of package client. Domain packages
// never see gin. docs/design/use-cases.md has the path of a read.
package api
