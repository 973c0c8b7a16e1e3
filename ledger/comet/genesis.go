package comet

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
)

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

// gatewayIDPattern is the ledger's gateway ID syntax (the author of v2
// entries: a lowercase letter or digit, then letters, digits, '.' and
// '-'), within 64 characters.
var gatewayIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,63}$`)

// checkGatewayID accepts the gateway IDs that can author ledger entries
// (ledger.NewSigner's syntax) of at most 64 characters: the gateway signs
// its entries as its comet ID.
func checkGatewayID(id string) error {
	if !gatewayIDPattern.MatchString(id) {
		return fmt.Errorf("comet: gateway id %q: want 2 to 64 characters from a-z, 0-9, '.' and '-', starting with a letter or digit", id)
	}
	return nil
}
