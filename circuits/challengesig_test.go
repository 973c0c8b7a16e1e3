package circuits_test

import (
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"github.com/healthgw/healthgw/circuits"
	"github.com/healthgw/healthgw/circuits/credential"
)

func signedChallenge(t *testing.T, key ed25519.PrivateKey, verifier string) circuits.Challenge {
	t.Helper()
	p, err := circuits.ParseParams(circuits.Age, map[string]string{"attribute": "birth_date", "cutoff": "2008-03-01"})
	if err != nil {
		t.Fatal(err)
	}
	day, err := credential.ParseDay("2026-03-01")
	if err != nil {
		t.Fatal(err)
	}
	ch := circuits.Challenge{
		ID: "0011223344556677", Statement: circuits.Age, Params: p, Nonce: make([]byte, 32),
		Verifier: verifier, Scope: circuits.ScopeFor(verifier), Date: day,
		ExpiresAt: time.Date(2026, 3, 1, 10, 5, 0, 123456789, time.UTC),
	}
	if err := ch.Sign(key); err != nil {
		t.Fatal(err)
	}
	return ch
}

// TestChallengeCheck: a holder accepts only a challenge the gateway signed,
// unchanged, for the verifier it proves to; one verifier cannot pass on a
// challenge scoped to another, and no field can be changed.
func TestChallengeCheck(t *testing.T) {
	gwPub, gw, _ := ed25519.GenerateKey(nil)
	otherPub, other, _ := ed25519.GenerateKey(nil)
	v1 := signedChallenge(t, gw, "insurer-v1")

	// The wire format keeps the signature valid.
	b, err := circuits.MarshalChallenge(v1)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := circuits.ParseChallenge(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := parsed.Check(gwPub, "insurer-v1"); err != nil {
		t.Fatalf("the gateway's challenge, parsed back: %v", err)
	}

	for _, tt := range []struct {
		name     string
		ch       func() circuits.Challenge
		key      ed25519.PublicKey
		verifier string
		want     error
	}{
		{"V1's challenge proved to V2", func() circuits.Challenge { return v1 }, gwPub, "insurer-v2", circuits.ErrChallengeScope},
		{"no verifier named by the holder", func() circuits.Challenge { return v1 }, gwPub, "", circuits.ErrChallengeScope},
		{"scope changed to V1 by V2", func() circuits.Challenge {
			ch := signedChallenge(t, gw, "insurer-v2")
			ch.Scope = circuits.ScopeFor("insurer-v1")
			return ch
		}, gwPub, "insurer-v2", circuits.ErrChallengeSignature},
		{"verifier and scope changed", func() circuits.Challenge {
			ch := signedChallenge(t, gw, "insurer-v2")
			ch.Verifier, ch.Scope = "insurer-v1", circuits.ScopeFor("insurer-v1")
			return ch
		}, gwPub, "insurer-v1", circuits.ErrChallengeSignature},
		{"nonce changed", func() circuits.Challenge { ch := v1; ch.Nonce = []byte("another nonce, same length......"); return ch }, gwPub, "insurer-v1", circuits.ErrChallengeSignature},
		{"date changed", func() circuits.Challenge { ch := v1; ch.Date++; return ch }, gwPub, "insurer-v1", circuits.ErrChallengeSignature},
		{"expiry changed", func() circuits.Challenge { ch := v1; ch.ExpiresAt = ch.ExpiresAt.Add(time.Hour); return ch }, gwPub, "insurer-v1", circuits.ErrChallengeSignature},
		{"unsigned", func() circuits.Challenge { ch := v1; ch.Signature = nil; return ch }, gwPub, "insurer-v1", circuits.ErrChallengeSignature},
		{"signed by another key", func() circuits.Challenge { return signedChallenge(t, other, "insurer-v1") }, gwPub, "insurer-v1", circuits.ErrChallengeSignature},
		{"checked with another key", func() circuits.Challenge { return v1 }, otherPub, "insurer-v1", circuits.ErrChallengeSignature},
		{"no gateway key", func() circuits.Challenge { return v1 }, nil, "insurer-v1", circuits.ErrChallengeSignature},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ch := tt.ch()
			if err := ch.Check(tt.key, tt.verifier); !errors.Is(err, tt.want) {
				t.Errorf("Check: %v, want %v", err, tt.want)
			}
			// The prover refuses it before proving (a nil prover would
			// panic if it got that far).
			var p *circuits.Prover
			if _, err := p.ProveChallenge(nil, credential.Secret{}, ch, circuits.Trust{GatewayKey: tt.key, Verifier: tt.verifier}); !errors.Is(err, tt.want) {
				t.Errorf("ProveChallenge: %v, want %v", err, tt.want)
			}
		})
	}
	// The gateway does not sign a scope that is not its verifier's.
	bad := v1
	bad.Scope = "insurer-v2"
	if err := bad.Sign(gw); !errors.Is(err, circuits.ErrChallengeScope) {
		t.Errorf("Sign of a foreign scope: %v", err)
	}
}
