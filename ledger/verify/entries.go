package verify

import (
	"context"
	"crypto/ecdh"
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/healthgw/healthgw/ledger"
)

// Keys are what a regulator holds to check entry bodies beyond the
// public tree: the sealing key the openings are sealed to (in an embedded
// gateway, the gateway's own keys/seal.key) and the pseudonym secret
// behind patient references (keys/pseudonym.key), to check that each
// opening's subject is the patient its body refers to. Either may be nil:
// without SealKey sealed bodies are not opened (their headers, signatures
// and authorship are still checked), without Pseudonyms subjects are not
// checked.
type Keys struct {
	SealKey    *ecdh.PrivateKey
	Pseudonyms *ledger.Pseudonymizer
}

// EnvelopeSource is a log's storage of entry envelopes (ledger.Store):
// Local with Options.Envelopes reads them.
type EnvelopeSource interface {
	Envelopes(ctx context.Context, start, end uint64) ([]ledger.Envelope, error)
}

// Body is an entry's signed header and opening as a regulator's API
// serves them (the opening in clear, over an authenticated connection).
type Body struct {
	// Leaf is the public leaf the API served with the body (nil: not
	// served); it must be the tree's.
	Leaf    []byte
	Header  []byte
	Opening []byte
}

// BodySource serves the headers and openings of entries [start, end) to
// a regulator (Remote with Options.Bodies). Every entry must have both:
// an entry whose body is not served cannot be checked (an error, not a
// Failure).
type BodySource interface {
	Bodies(ctx context.Context, start, end uint64) ([]Body, error)
}

// entryChecker checks entries in index order against the registry as of
// each index (ledger.Authority): the header the leaf seals, the envelope,
// the opening (when it can be opened), the author's signature and the
// authorship rules.
type entryChecker struct {
	auth *ledger.Authority
	keys Keys
	res  *Result
}

func newEntryChecker(o Options, res *Result) *entryChecker {
	res.Envelopes = true
	return &entryChecker{auth: ledger.NewAuthority(o.Genesis), keys: o.Keys, res: res}
}

// opened is the result of the parallel phase for one entry.
type opened struct {
	header    ledger.Header
	statement *ledger.Statement // nil: not opened
	subject   bool              // the opening's subject was checked
	failure   *Failure
}

// checkEnvelopes checks entries [first, first+len(leaves)) with their
// envelopes (from storage) and returns the first failure. Opening
// (decryption) runs in parallel; the registry is applied in order.
func (c *entryChecker) checkEnvelopes(first uint64, leaves [][]byte, envs []ledger.Envelope) *Failure {
	out := make([]opened, len(leaves))
	parallel(len(leaves), func(i int) {
		out[i] = c.openEnvelope(first+uint64(i), leaves[i], envs[i])
	})
	return c.apply(first, out)
}

// checkBodies checks entries [first, first+len(leaves)) with the bodies
// a regulator's API served.
func (c *entryChecker) checkBodies(first uint64, leaves [][]byte, bodies []Body) (*Failure, error) {
	for i, b := range bodies {
		if b.Header == nil || b.Opening == nil {
			return nil, fmt.Errorf("verify: entry %d: the API served no header or opening (a regulator's token reads every body)", first+uint64(i))
		}
	}
	out := make([]opened, len(leaves))
	parallel(len(leaves), func(i int) {
		out[i] = c.openBody(first+uint64(i), leaves[i], bodies[i])
	})
	return c.apply(first, out), nil
}

// parallel runs fn(0..n-1) on up to GOMAXPROCS goroutines.
func parallel(n int, fn func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), n)
	if workers <= 1 {
		for i := range n {
			fn(i)
		}
		return
	}
	var next sync.Mutex
	i := 0
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				next.Lock()
				j := i
				i++
				next.Unlock()
				if j >= n {
					return
				}
				fn(j)
			}
		}()
	}
	wg.Wait()
}

// header checks that header is the one leaf seals and decodes it.
func header(index uint64, leaf, header []byte) (ledger.Header, *Failure) {
	l, err := ledger.DecodeLeaf(leaf)
	if err != nil {
		return ledger.Header{}, fail(KindEntry, int64(index), err, "not a canonical v2 leaf")
	}
	if ledger.Seal(header) != l.Seal {
		return ledger.Header{}, fail(KindEnvelope, int64(index), ledger.ErrSealMismatch,
			"the entry's signed header is not the one its leaf seals (the header was replaced or edited)")
	}
	h, err := ledger.DecodeHeader(header)
	if err != nil {
		return ledger.Header{}, fail(KindEnvelope, int64(index), err, "the entry's header does not decode")
	}
	if err := ledger.CheckLeaf(l, h); err != nil {
		return ledger.Header{}, fail(KindEnvelope, int64(index), err, "the leaf does not match its header")
	}
	return h, nil
}

func (c *entryChecker) openEnvelope(index uint64, leaf []byte, env ledger.Envelope) opened {
	h, f := header(index, leaf, env.Header)
	if f != nil {
		return opened{failure: f}
	}
	if _, err := ledger.CheckEnvelope(env); err != nil {
		f := entryFailure(index, err, "the entry's envelope does not check against its header")
		if f.Kind == KindBody { // checked without a key: the binding, not the body
			f.Kind = KindEnvelope
		}
		return opened{failure: f}
	}
	var o ledger.Opening
	var err error
	switch {
	case len(env.Clear) > 0:
		o, err = ledger.DecodeOpening(env.Clear)
	case c.keys.SealKey == nil:
		return opened{header: h}
	default:
		o, err = ledger.OpenSealed(env.Sealed, c.keys.SealKey)
		if errors.Is(err, ledger.ErrNotRecipient) {
			return opened{header: h}
		}
	}
	if err != nil {
		return opened{header: h, failure: entryFailure(index, err, "the entry's opening does not open")}
	}
	return c.checkOpening(index, h, o, true)
}

func (c *entryChecker) openBody(index uint64, leaf []byte, b Body) opened {
	if b.Leaf != nil && string(b.Leaf) != string(leaf) {
		return opened{failure: fail(KindEntry, int64(index), nil, "the API served another leaf than the tree holds")}
	}
	h, f := header(index, leaf, b.Header)
	if f != nil {
		return opened{failure: f}
	}
	o, err := ledger.DecodeOpening(b.Opening)
	if err != nil {
		return opened{header: h, failure: entryFailure(index, err, "the served opening does not decode")}
	}
	// Openings served by the API carry no subject (the pseudonym is
	// never handed out): subjects are checked from storage only.
	return c.checkOpening(index, h, o, false)
}

// checkOpening checks o against h and, when the opening carries its
// subject (always, from storage), the subject against the body's patient
// reference.
func (c *entryChecker) checkOpening(index uint64, h ledger.Header, o ledger.Opening, withSubject bool) opened {
	st, err := ledger.CheckOpening(o, h)
	if err != nil {
		return opened{header: h, failure: entryFailure(index, err, "the opening does not open the entry's signed commitment")}
	}
	out := opened{header: h, statement: &st}
	if !withSubject || c.keys.Pseudonyms == nil {
		return out
	}
	ref := patientRef(st.Body)
	switch {
	case ref == "" && o.Subject != "":
		return opened{header: h, failure: fail(KindBody, int64(index), ledger.ErrSubjectMismatch, "the opening names a patient but its body refers to none")}
	case ref == "":
		return out
	}
	k, err := c.keys.Pseudonyms.RefKey(o.Subject)
	if err != nil || !ledger.IsAbout(k, st.Salt, ref) {
		return opened{header: h, failure: fail(KindBody, int64(index), ledger.ErrSubjectMismatch,
			"the opening's patient is not the one the body's patient reference is of")}
	}
	out.subject = true
	return out
}

// apply runs the registry's checks on the opened entries in order. An
// entry's checks run in the order header, signature and authorship,
// body: a forged entry is named as forged even if its body is wrong too.
func (c *entryChecker) apply(first uint64, out []opened) *Failure {
	for i, e := range out {
		idx := first + uint64(i)
		if e.failure != nil && (e.failure.Kind != KindBody || clearType(e.header.Type)) {
			return e.failure
		}
		if err := c.auth.Verify(idx, e.header, e.statement); err != nil {
			return entryFailure(idx, err, "the registry as of this index refuses the entry")
		}
		if e.failure != nil {
			return e.failure
		}
		if err := c.auth.Apply(idx, e.header, e.statement); err != nil {
			return entryFailure(idx, err, "the entry cannot be applied to the registry")
		}
		c.res.EntrySignatures++
		switch {
		case e.statement == nil:
			c.res.Unopened++
		default:
			c.res.Opened++
		}
		if e.subject {
			c.res.Subjects++
		}
	}
	return nil
}

// entryFailure classifies an entry check's error (a ledger sentinel).
func entryFailure(index uint64, err error, msg string) *Failure {
	kind := KindEnvelope
	switch {
	case errors.Is(err, ledger.ErrBadEntrySignature):
		kind, msg = KindEntrySignature, "the entry's signature does not verify under its author's node key as registered at this index (a forged entry)"
	case errors.Is(err, ledger.ErrAuthorship):
		kind, msg = KindAuthorship, "the entry's author may not write it"
	case errors.Is(err, ledger.ErrCommitmentMismatch), errors.Is(err, ledger.ErrStatementMismatch),
		errors.Is(err, ledger.ErrAttestationMismatch), errors.Is(err, ledger.ErrJustificationMismatch),
		errors.Is(err, ledger.ErrSubjectMismatch):
		kind = KindBody
	}
	var ve *ledger.VerifyError
	if errors.As(err, &ve) {
		err = ve.Err // the index is the Failure's
	}
	return fail(kind, int64(index), err, "%s", msg)
}

// clearType reports whether entries of type t travel in clear (registry
// entries: every gateway must read them to check authorship).
func clearType(t ledger.Type) bool {
	switch t {
	case ledger.TypeGatewayRegistered, ledger.TypeOrgRegistered, ledger.TypeOrgKeysRotated,
		ledger.TypeIssuerRegistered, ledger.TypeCircuitRegistered:
		return true
	}
	return false
}

// patientRef returns the patient reference a v2 body carries, if any.
func patientRef(body any) string {
	switch b := body.(type) {
	case *ledger.ConsentGrantedV2:
		return b.Patient
	case *ledger.ConsentRevokedV2:
		return b.Patient
	case *ledger.RecordRegisteredV2:
		return b.Patient
	case *ledger.RecordShreddedV2:
		return b.Patient
	case *ledger.AccessDecidedV2:
		return b.Patient
	}
	return ""
}
