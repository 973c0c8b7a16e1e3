// Package api is healthgw's HTTP transport: the gin router, middleware
// (request IDs, body limits, panic recovery, metrics, authentication and
// per-route kind and scope checks), request and response types with
// Validate methods, and the one error boundary that maps error kinds to
// status codes and public messages. Domain packages never see gin.
package api
