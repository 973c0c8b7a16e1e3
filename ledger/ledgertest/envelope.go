package ledgertest

import (
	"context"
	"crypto/ecdh"
	"fmt"

	"github.com/healthgw/healthgw/ledger"
)

// SignEnvelope returns the envelope the gateway of identity id appends for
// domain entry e: signed with id's node key and sealed to id's own
// sealing key and to also (a registry entry travels in clear). It is made
// without a log, as the one gateway of a log of its own (so every org is
// homed at it), for tests that append envelopes to a store directly,
// replay them in another log or forge them: an identity with a gateway's
// ID and another node key signs what that gateway never wrote.
func SignEnvelope(id ledger.Identity, e ledger.Entry, also ...*ecdh.PublicKey) (ledger.Envelope, error) {
	ctx := context.Background()
	st := &MemStore{}
	n, err := ledger.OpenNode(ctx, st, id)
	if err != nil {
		return ledger.Envelope{}, fmt.Errorf("sign envelope: %w", err)
	}
	idx, err := n.Append(ctx, e)
	if err != nil {
		return ledger.Envelope{}, fmt.Errorf("sign envelope: %w", err)
	}
	envs, err := st.Envelopes(ctx, idx, idx+1)
	if err != nil {
		return ledger.Envelope{}, err
	}
	env := envs[0]
	if len(also) == 0 || env.Sealed == nil {
		return env, nil
	}
	o, err := ledger.OpenSealed(env.Sealed, id.SealKey)
	if err != nil {
		return ledger.Envelope{}, fmt.Errorf("sign envelope: reseal: %w", err)
	}
	h, err := ledger.DecodeHeader(env.Header)
	if err != nil {
		return ledger.Envelope{}, err
	}
	to := append([]*ecdh.PublicKey{id.SealKey.PublicKey()}, also...)
	if env.Sealed, err = ledger.SealOpening(o, h, to); err != nil {
		return ledger.Envelope{}, fmt.Errorf("sign envelope: reseal: %w", err)
	}
	return env, nil
}

// RegistrationEnvelope returns the envelope of the gateway.registered
// entry with which the gateway of identity id registers itself (entry 0
// of its embedded log).
func RegistrationEnvelope(id ledger.Identity) (ledger.Envelope, error) {
	ctx := context.Background()
	st := &MemStore{}
	if _, err := ledger.OpenNode(ctx, st, id); err != nil {
		return ledger.Envelope{}, fmt.Errorf("registration envelope: %w", err)
	}
	envs, err := st.Envelopes(ctx, 0, 1)
	if err != nil {
		return ledger.Envelope{}, err
	}
	return envs[0], nil
}
