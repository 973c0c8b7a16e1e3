// Package client is a typed Go client for the healthgw gateway's HTTP API
// (v1), and the home of its wire types: the request and response bodies
// the gateway's api package serves are these types, so a client and the
// server cannot drift apart. It depends on no server package.
package client
