// Package ratelimit holds the gateway's request limits: keyed token buckets
// (golang.org/x/time/rate) with bounded memory, an exponential back-off
// after repeated failures, and a limiter for repeated log lines.
//
// Every method takes the current time from the Limiter's clock, which
// tests replace; nothing here sleeps or starts a goroutine. Memory is
// bounded: each keyed table holds at most Config.MaxKeys keys and drops
// the least recently used one (a bucket idle long enough to be full again,
// or a back-off long expired, loses nothing by being dropped).
//
// The package knows nothing of HTTP; the api package applies it.
package ratelimit
