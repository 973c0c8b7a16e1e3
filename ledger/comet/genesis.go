package comet

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// zeroTime is the Time of a submitted entry: the log sets the block time.
var zeroTime = time.Time{}

// ErrBadGenesis: the genesis app_state is not a valid GenesisState.
var ErrBadGenesis = errors.New("comet: bad genesis app state")

// Gateway is one consortium member's gateway: the ID it signs transactions
// as and its Ed25519 public key.
type Gateway struct {
	ID        string
	PublicKey ed25519.PublicKey
}

// GenesisState is the application's part of genesis.json (app_state): the
// gateways allowed to submit entries.
type GenesisState struct {
	Gateways []Gateway
}

type wireGenesis struct {
	Gateways []wireGateway `json:"gateways"`
}

type wireGateway struct {
	ID        string `json:"id"`
	PublicKey []byte `json:"public_key"` // base64 Ed25519 public key
}

// MarshalAppState returns the app_state JSON for genesis.json.
func (g GenesisState) MarshalAppState() (json.RawMessage, error) {
	if _, err := g.gatewayMap(); err != nil {
		return nil, err
	}
	w := wireGenesis{Gateways: make([]wireGateway, len(g.Gateways))}
	for i, gw := range g.Gateways {
		w.Gateways[i] = wireGateway{ID: gw.ID, PublicKey: gw.PublicKey}
	}
	return json.MarshalIndent(w, "", "  ")
}

// ParseAppState parses and validates the app_state of genesis.json.
func ParseAppState(b []byte) (GenesisState, error) {
	var w wireGenesis
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return GenesisState{}, fmt.Errorf("%w: %v", ErrBadGenesis, err)
	}
	if dec.More() {
		return GenesisState{}, fmt.Errorf("%w: trailing data", ErrBadGenesis)
	}
	g := GenesisState{Gateways: make([]Gateway, len(w.Gateways))}
	for i, gw := range w.Gateways {
		g.Gateways[i] = Gateway{ID: gw.ID, PublicKey: ed25519.PublicKey(gw.PublicKey)}
	}
	if _, err := g.gatewayMap(); err != nil {
		return GenesisState{}, err
	}
	return g, nil
}

// gatewayMap validates g and returns its gateways by ID.
func (g GenesisState) gatewayMap() (map[string]ed25519.PublicKey, error) {
	if len(g.Gateways) == 0 {
		return nil, fmt.Errorf("%w: no gateways", ErrBadGenesis)
	}
	m := make(map[string]ed25519.PublicKey, len(g.Gateways))
	for _, gw := range g.Gateways {
		if err := checkGatewayID(gw.ID); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadGenesis, err)
		}
		if len(gw.PublicKey) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("%w: gateway %q: public key must be %d bytes", ErrBadGenesis, gw.ID, ed25519.PublicKeySize)
		}
		if _, dup := m[gw.ID]; dup {
			return nil, fmt.Errorf("%w: gateway %q listed twice", ErrBadGenesis, gw.ID)
		}
		m[gw.ID] = append(ed25519.PublicKey(nil), gw.PublicKey...)
	}
	return m, nil
}

// checkGatewayID accepts 1 to 64 characters from [a-z0-9._-].
func checkGatewayID(id string) error {
	if id == "" || len(id) > 64 {
		return fmt.Errorf("comet: gateway id %q must be 1 to 64 characters", id)
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("comet: gateway id %q: only a-z, 0-9, '.', '_' and '-' are allowed", id)
		}
	}
	return nil
}
