package comet

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	cmtjson "github.com/cometbft/cometbft/libs/json"
	"github.com/cometbft/cometbft/privval"
	"github.com/cometbft/cometbft/types"

	"github.com/healthgw/healthgw/internal/atomicfile"
)

// GatewayKeyFile is where a node home keeps its gateway's identity and
// signing key, relative to the home.
const GatewayKeyFile = "config/gateway_key.json"

// GatewayKey is a gateway's identity: the ID it signs transactions as and
// its Ed25519 key.
type GatewayKey struct {
	ID         string
	PrivateKey ed25519.PrivateKey
}

type wireGatewayKey struct {
	ID         string `json:"id"`
	PrivateKey []byte `json:"private_key"` // base64 Ed25519 seed (32 bytes)
}

// NewGatewayKey returns a fresh key for gateway id.
func NewGatewayKey(id string) (GatewayKey, error) {
	if err := checkGatewayID(id); err != nil {
		return GatewayKey{}, err
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return GatewayKey{}, err
	}
	return GatewayKey{ID: id, PrivateKey: priv}, nil
}

// Public returns the gateway's entry for the genesis state.
func (k GatewayKey) Public() Gateway {
	return Gateway{ID: k.ID, PublicKey: k.PrivateKey.Public().(ed25519.PublicKey)}
}

// SaveGatewayKey writes k to path, readable only by its owner.
func SaveGatewayKey(path string, k GatewayKey) error {
	b, err := json.MarshalIndent(wireGatewayKey{ID: k.ID, PrivateKey: k.PrivateKey.Seed()}, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Replace(path, append(b, '\n'), 0o600)
}

// LoadGatewayKey reads a key written by SaveGatewayKey.
func LoadGatewayKey(path string) (GatewayKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return GatewayKey{}, fmt.Errorf("read gateway key: %w", err)
	}
	var w wireGatewayKey
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return GatewayKey{}, fmt.Errorf("parse gateway key %s: %w", path, err)
	}
	if err := checkGatewayID(w.ID); err != nil {
		return GatewayKey{}, fmt.Errorf("gateway key %s: %w", path, err)
	}
	if len(w.PrivateKey) != ed25519.SeedSize {
		return GatewayKey{}, fmt.Errorf("gateway key %s: private_key must be a %d-byte seed", path, ed25519.SeedSize)
	}
	return GatewayKey{ID: w.ID, PrivateKey: ed25519.NewKeyFromSeed(w.PrivateKey)}, nil
}

// loadPrivValidator loads the validator key and its last-sign state.
// privval.LoadFilePV exits the process on a missing or corrupt file, so
// both are checked here first. A missing state file is created (height
// 0) only when fresh is true, i.e. the node has no blocks yet: otherwise
// a lost state file could let the validator sign twice at a height.
func loadPrivValidator(keyFile, stateFile string, fresh bool) (*privval.FilePV, error) {
	kb, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("read validator key: %w", err)
	}
	var key privval.FilePVKey
	if err := cmtjson.Unmarshal(kb, &key); err != nil || key.PrivKey == nil {
		return nil, fmt.Errorf("parse validator key %s: %v", keyFile, err)
	}
	sb, err := os.ReadFile(stateFile)
	switch {
	case errors.Is(err, os.ErrNotExist) && fresh:
		b, err := cmtjson.MarshalIndent(privval.FilePVLastSignState{}, "", "  ")
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(stateFile), 0o700); err != nil {
			return nil, err
		}
		if err := atomicfile.Replace(stateFile, b, 0o600); err != nil {
			return nil, fmt.Errorf("create validator state: %w", err)
		}
	case err != nil:
		return nil, fmt.Errorf("read validator state (refusing to start without it once the node has blocks): %w", err)
	default:
		var st privval.FilePVLastSignState
		if err := cmtjson.Unmarshal(sb, &st); err != nil {
			return nil, fmt.Errorf("parse validator state %s: %w", stateFile, err)
		}
	}
	return privval.LoadFilePV(keyFile, stateFile), nil
}

// loadGenesis reads genesis.json and checks its app_state.
func loadGenesis(path string) (*types.GenesisDoc, GenesisState, error) {
	doc, err := types.GenesisDocFromFile(path)
	if err != nil {
		return nil, GenesisState{}, fmt.Errorf("read genesis: %w", err)
	}
	gs, err := ParseAppState(doc.AppState)
	if err != nil {
		return nil, GenesisState{}, fmt.Errorf("genesis %s: %w", path, err)
	}
	return doc, gs, nil
}
