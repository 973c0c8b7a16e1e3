// Package authstore keeps the token endpoint's persistent state in the
// relational database through gorm: the replay cache of client assertion
// jtis (auth.ReplayCache), which survives restarts and forgets entries
// once their assertion can no longer be valid.
package authstore
