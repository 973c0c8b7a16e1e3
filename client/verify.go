package client

import (
	"errors"
	"fmt"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/healthgw/healthgw/ledger"
)

// ErrNoBody: an entry proof carries no header and opening (the caller is
// not entitled to the entry's body), so only its inclusion can be checked.
var ErrNoBody = errors.New("client: the entry proof carries no body")

// VerifyEntry checks an entry proof (a consent receipt, or GET
// /v1/ledger/entries/{i} as a party sees it) against the log's checkpoint
// key, trusting the gateway for nothing: the checkpoint's signature (and
// origin, when not empty), that the proof's tree size is the checkpoint's
// (a receipt's is), the leaf hash, the leaf's inclusion (RFC 6962), then
// that the header's seal is the leaf's (CheckLeaf) and the opening opens
// the header (CheckOpening: its statement hashes to the header's
// commitment and agrees with its type, author and org). It returns the
// statement: what the author signed. The header's signature is checked
// against the author's node key by whoever holds the registry
// (ledger.VerifyHeader, `healthgw ledger verify`).
//
// An entry proof without a body (GET /v1/ledger/entries/{i} by a caller
// not entitled to it) is checked up to the leaf's inclusion and returns
// ErrNoBody.
func VerifyEntry(p EntryProof, v note.Verifier, origin string) (ledger.Statement, error) {
	if tlog.RecordHash(p.Entry) != p.LeafHash {
		return ledger.Statement{}, fmt.Errorf("client: leaf hash %s is not the entry's", p.LeafHash)
	}
	r := ledger.Receipt{
		Index: p.Index, Entry: p.Entry, Header: p.Header, Opening: p.Opening,
		Checkpoint: []byte(p.Checkpoint), TreeSize: p.TreeSize, Proof: p.Proof,
	}
	if len(p.Header) == 0 && len(p.Opening) == 0 {
		c, err := ledger.OpenCheckpoint(r.Checkpoint, v, origin)
		if err != nil {
			return ledger.Statement{}, err
		}
		if c.Size != p.TreeSize {
			return ledger.Statement{}, fmt.Errorf("%w: proof tree size %d, checkpoint %d", ledger.ErrBadCheckpoint, p.TreeSize, c.Size)
		}
		if err := ledger.VerifyInclusion(c, p.Index, p.Entry, p.Proof); err != nil {
			return ledger.Statement{}, err
		}
		return ledger.Statement{}, ErrNoBody
	}
	return ledger.VerifyReceipt(r, v, origin)
}
