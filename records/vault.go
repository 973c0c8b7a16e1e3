package records

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/healthgw/healthgw/ledger"
)

// DefaultMaxSize is the default largest record content, in bytes
// (16 MiB). The HTTP layer answers 413 above it (see MaxBodySize).
const DefaultMaxSize = 16 << 20

// DefaultPendingTimeout is how old a pending record (written, but its
// ledger entry not known durable) must be before Recover deletes it. It
// must exceed the longest time an Append can take.
const DefaultPendingTimeout = 15 * time.Minute

// finishTimeout bounds the steps that complete an operation after its
// ledger entry or key destruction happened; they run even if the caller
// has gone.
const finishTimeout = 30 * time.Second

// maxPatientLen bounds a patient identifier.
const maxPatientLen = 256

// Appender appends entries to the ledger (ledger.Log satisfies it).
type Appender interface {
	Append(ctx context.Context, e ledger.Entry) (uint64, error)
}

// Syncer applies the log, up to the newest entry the node knows is
// committed, to the projections; among them the store's registrations
// (recordstore.Store is a ledger.Applier that publishes a pending record
// when its record.registered entry is applied, and notes a shredding when
// its record.shredded entry is).
type Syncer interface {
	SyncHead(ctx context.Context) error
}

// InputError is bad input to the vault: Err is ErrInvalid or ErrTooLarge,
// and Message says what is wrong in words fit for the client that sent
// the input (it names the problem, never the content).
type InputError struct {
	Err     error
	Message string
}

func (e *InputError) Error() string { return e.Err.Error() + ": " + e.Message }

// Unwrap returns ErrInvalid or ErrTooLarge.
func (e *InputError) Unwrap() error { return e.Err }

// PublicMessage returns Message: the text the API may show the client.
func (e *InputError) PublicMessage() string { return e.Message }

func inputErrorf(kind error, format string, args ...any) error {
	return &InputError{Err: kind, Message: fmt.Sprintf(format, args...)}
}

func invalidf(format string, args ...any) error { return inputErrorf(ErrInvalid, format, args...) }

// Options configure a Vault. Zero values select the defaults.
type Options struct {
	// MaxSize is the largest record content accepted by Put, and the
	// largest a Read answers with (DefaultMaxSize).
	MaxSize int64
	// MaxStreamSize is the largest record content accepted by PutStream
	// (DefaultMaxStreamSize). It is at least MaxSize.
	MaxStreamSize int64
	// PendingTimeout: see DefaultPendingTimeout.
	PendingTimeout time.Duration
	// Sync, if set, brings the store's registrations up to the head of
	// the log before a pending record's outcome is looked at (a retried
	// Put, Recover). Without it the store is taken as it is.
	Sync Syncer
	// LateCommits says that the ledger may commit an entry long after
	// its Append failed, even after the appending process is gone (a
	// consortium: the transaction can wait in a peer's mempool until the
	// quorum is back). Then a registration's absence is never final, and
	// Recover keeps every pending record; the record becomes visible if
	// its registration commits, and a retried Put (same ID) re-submits
	// it. Without LateCommits (one node), a registration that is not in
	// the log once the appending process is gone never will be, and
	// Recover deletes pending records older than PendingTimeout.
	LateCommits bool
	// Now is the clock (time.Now).
	Now func() time.Time
	// Logger receives operational messages; never PHI or keys
	// (slog.Default).
	Logger *slog.Logger
}

// Vault stores and serves encrypted records. It is safe for concurrent
// use.
type Vault struct {
	store  Store
	keys   KeyProvider
	ledger Appender
	pseud  *ledger.Pseudonymizer
	opts   Options
}

// NewVault returns a Vault. store, keys, log and pseud are required
// (a nil one is a programming error and panics).
func NewVault(store Store, keys KeyProvider, log Appender, pseud *ledger.Pseudonymizer, opts Options) *Vault {
	if store == nil || keys == nil || log == nil || pseud == nil {
		panic("records.NewVault: nil dependency")
	}
	if opts.MaxSize <= 0 {
		opts.MaxSize = DefaultMaxSize
	}
	if opts.MaxStreamSize <= 0 {
		opts.MaxStreamSize = DefaultMaxStreamSize
	}
	opts.MaxStreamSize = max(opts.MaxStreamSize, opts.MaxSize)
	if opts.PendingTimeout <= 0 {
		opts.PendingTimeout = DefaultPendingTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Vault{store: store, keys: keys, ledger: log, pseud: pseud, opts: opts}
}

// MaxSize returns the largest record content the vault accepts.
func (v *Vault) MaxSize() int64 { return v.opts.MaxSize }

// MaxBodySize returns a request-body limit that admits every record of up
// to maxSize bytes sent as base64 in a JSON upload (plus 64 KiB for the
// rest of the body). Content that is larger still is refused by Put with
// ErrTooLarge.
func MaxBodySize(maxSize int64) int64 {
	return int64(base64.StdEncoding.EncodedLen(int(maxSize))) + 64<<10
}

// PutRequest is a record to store.
type PutRequest struct {
	// ID is the record's ID: "" for a new one, or the ID an idempotency
	// key fixed (a UUID), which makes Put safe to repeat (see Put).
	ID       string
	Holder   string // the uploading (holding) organisation: the caller
	Patient  string // the patient's identifier; only its pseudonym is kept
	Category Category
	// ContentType is a media type; application/fhir+json content must be
	// a FHIR resource (see ParseContent).
	ContentType string
	Content     []byte
	// ResourceType is the FHIR resource type. For FHIR JSON it is read
	// from the content (and if given must match); for other content types
	// it is optional.
	ResourceType string
	// ContentSHA256, if set, is the SHA-256 the content must have (a
	// client's Content-Digest): content that differs is refused with
	// ErrInvalid and nothing is kept.
	ContentSHA256 []byte
}

// validate checks r and returns the normalised content type and resource
// type. Errors wrap ErrInvalid or ErrTooLarge.
func (v *Vault) validate(r PutRequest) (contentType, resourceType string, err error) {
	ct, err := v.validateMeta(r)
	if err != nil {
		return "", "", err
	}
	if len(r.Content) == 0 {
		return "", "", invalidf("content is empty")
	}
	if int64(len(r.Content)) > v.opts.MaxSize {
		return "", "", inputErrorf(ErrTooLarge, "%d bytes; the limit is %d", len(r.Content), v.opts.MaxSize)
	}
	rt := r.ResourceType
	if IsFHIR(ct) {
		got, err := ValidateFHIR(r.Content, r.Patient, r.Category)
		if err != nil {
			return "", "", err
		}
		if rt != "" && rt != got {
			return "", "", invalidf("resource_type does not match the content's resourceType")
		}
		rt = got
	}
	return ct, rt, nil
}

// validateMeta checks what r says of the record but its content, and
// returns the normalised content type. Errors wrap ErrInvalid.
func (v *Vault) validateMeta(r PutRequest) (contentType string, err error) {
	if !orgPattern.MatchString(r.Holder) {
		return "", invalidf("holder is not an organisation ID")
	}
	if err := ValidatePatient(r.Patient); err != nil {
		return "", err
	}
	if !r.Category.Valid() {
		return "", invalidf("unknown category; want one of %s", categoryList())
	}
	ct, err := NormalizeContentType(r.ContentType)
	if err != nil {
		return "", err
	}
	if r.ContentSHA256 != nil && len(r.ContentSHA256) != sha256.Size {
		return "", invalidf("the content digest is not a SHA-256 (%d bytes, want %d)", len(r.ContentSHA256), sha256.Size)
	}
	if !IsFHIR(ct) && r.ResourceType != "" && !resourceTypePattern.MatchString(r.ResourceType) {
		return "", invalidf("resource_type is not a FHIR resource type name (like Observation)")
	}
	return ct, nil
}

// ValidatePatient checks a patient identifier: 1-256 bytes of UTF-8
// without control characters. Errors wrap ErrInvalid.
func ValidatePatient(p string) error {
	if p == "" || len(p) > maxPatientLen || !utf8.ValidString(p) ||
		strings.ContainsFunc(p, unicode.IsControl) || strings.TrimSpace(p) != p {
		return invalidf("patient must be 1-%d characters, without control characters or surrounding spaces", maxPatientLen)
	}
	return nil
}

func categoryList() string {
	s := make([]string, len(categories))
	for i, c := range categories {
		s[i] = string(c)
	}
	return strings.Join(s, ", ")
}

// Put encrypts and stores a record and registers it on the ledger. The
// record becomes visible only after its record.registered entry is
// durable. The returned Record has the ID, the commitment and the ledger
// index.
//
// If the append fails, what is kept depends on what is known. A refusal
// (the ledger rejected the entry) keeps nothing. An unknown outcome
// (ledger.ErrUnavailable, ledger.ErrClosed, or the caller's context
// ending: the entry may still be committed, see ledger.Appender) keeps
// the record pending, invisible, until its registration is known
// committed (the registrations projection publishes it then, see Syncer)
// or known absent (Recover): a registration never lacks its record.
//
// With r.ID set, Put is safe to repeat: a record with that ID that is
// visible (or shredded since) is returned as it is, and nothing is
// appended; a pending one (an earlier attempt whose outcome is unknown)
// is looked for on the ledger first (Options.Sync) and returned if its
// registration is there, and otherwise the identical registration is
// submitted again: the same ID, ciphertext and commitment, never a second
// record. (If the earlier submission is still in flight, for instance in
// a peer's mempool, the log can then hold the registration twice; the
// registrations projection applies only the first.) r must be the
// request that created the record; a record with that ID of another
// holder or patient is an error.
//
// Errors: ErrInvalid and ErrTooLarge for bad input (nothing stored,
// nothing appended), ErrNoKey if the holder has no KEK, and the ledger's
// errors (e.g. ledger.ErrUnavailable) wrapped.
func (v *Vault) Put(ctx context.Context, r PutRequest) (Record, error) {
	ct, rt, err := v.validate(r)
	if err != nil {
		return Record{}, err
	}
	if r.ContentSHA256 != nil {
		if sum := sha256.Sum256(r.Content); !bytes.Equal(sum[:], r.ContentSHA256) {
			return Record{}, errDigestMismatch
		}
	}
	if r.ID != "" {
		if !validID(r.ID) {
			return Record{}, fmt.Errorf("records: put: %q is not a record ID", r.ID)
		}
		s, err := v.store.Meta(ctx, r.ID)
		switch {
		case err == nil:
			return v.resume(ctx, r, s)
		case !errors.Is(err, ErrNotFound):
			return Record{}, fmt.Errorf("records: put: %w", err)
		}
	}
	rec, kek, err := v.newRecord(ctx, r, ct, rt)
	if err != nil {
		return Record{}, err
	}
	rec.Size = int64(len(r.Content))
	format := contentFormat(len(r.Content))
	// The envelope goes into a pooled buffer: the store copies it
	// (Store.Create), so no buffer of the content's size is allocated
	// per upload.
	buf := envelopePool.get(SealedSize(format, len(r.Content)))
	defer envelopePool.put(buf)
	s, err := sealAppend((*buf)[:0], kek, bindingOf(format, rec), r.Content)
	if err != nil {
		return Record{}, fmt.Errorf("records: seal: %w", err)
	}
	*buf = s.ciphertext
	sum := sha256.Sum256(s.ciphertext)
	rec.Commitment = hex.EncodeToString(sum[:])
	entry, err := registration(rec)
	if err != nil {
		return Record{}, err
	}
	err = v.store.Create(ctx, Stored{
		Record:     rec,
		Format:     format,
		Ciphertext: s.ciphertext,
		WrappedKey: s.wrappedKey,
		Pending:    true,
	})
	if err != nil {
		return Record{}, fmt.Errorf("records: store: %w", err)
	}
	return v.register(ctx, rec, entry)
}

// newRecord returns the metadata of the new record r asks for, with
// content type ct and resource type rt (its size and commitment are the
// caller's to set), and the holder's current KEK it is sealed under.
func (v *Vault) newRecord(ctx context.Context, r PutRequest, ct, rt string) (Record, KEK, error) {
	kek, err := v.keys.Current(ctx, r.Holder)
	if err != nil {
		return Record{}, KEK{}, fmt.Errorf("records: key for %s: %w", r.Holder, err)
	}
	return Record{
		ID:           cmp.Or(r.ID, uuid.NewString()),
		Holder:       r.Holder,
		Patient:      v.pseud.Pseudonym(r.Patient),
		Category:     r.Category,
		ResourceType: rt,
		ContentType:  ct,
		KeyVersion:   kek.Version(),
		CreatedAt:    v.opts.Now().UTC(),
	}, kek, nil
}

// errDigestMismatch: the content is not what the client's digest says.
var errDigestMismatch = invalidf("the content's SHA-256 is not the digest sent with it")

// register appends the registration entry of rec, a pending record
// stored in full, and publishes rec once it is durable. A refusal
// deletes the pending record; an unknown outcome keeps it (see Put).
func (v *Vault) register(ctx context.Context, rec Record, entry ledger.Entry) (Record, error) {
	idx, err := v.ledger.Append(ctx, entry)
	if err != nil && OutcomeUnknown(err) {
		return Record{}, v.keptPending(rec.ID, err)
	}
	if err != nil {
		fctx, cancel := finishContext(ctx)
		defer cancel()
		if derr := v.store.DeletePending(fctx, rec.ID); derr != nil {
			// Recover deletes it after PendingTimeout.
			v.opts.Logger.Warn("records: delete pending record after failed append",
				slog.String("record_id", rec.ID), slog.Any("error", derr))
		}
		return Record{}, fmt.Errorf("records: register on ledger: %w", err)
	}
	return v.publish(ctx, rec, idx)
}

// OutcomeUnknown reports whether an append that failed with err may still
// have appended its entry (or may still append it): the ledger could not
// say (ledger.ErrUnavailable), was closed while the entry waited
// (ledger.ErrClosed), or the caller stopped waiting (its context ended
// after the entry was queued). Any other error is a refusal: nothing was
// appended.
func OutcomeUnknown(err error) bool {
	return errors.Is(err, ledger.ErrUnavailable) || errors.Is(err, ledger.ErrClosed) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// keptPending logs and returns the error of a registration whose outcome
// is unknown: the pending record stays, unreadable, because the
// registration may still be committed.
func (v *Vault) keptPending(id string, err error) error {
	v.opts.Logger.Warn("records: registration outcome unknown; the pending record is kept",
		slog.String("record_id", id))
	return fmt.Errorf("records: register on ledger (outcome unknown; record %s kept pending): %w", id, err)
}

// registration is the record.registered entry of rec.
func registration(rec Record) (ledger.Entry, error) {
	e, err := ledger.NewEntry(rec.Holder, &ledger.RecordRegistered{
		RecordID:     rec.ID,
		Holder:       rec.Holder,
		Patient:      rec.Patient,
		Category:     string(rec.Category),
		ResourceType: rec.ResourceType,
		Commitment:   rec.Commitment,
		ContentType:  rec.ContentType,
		Size:         rec.Size,
	})
	if err != nil {
		return ledger.Entry{}, fmt.Errorf("records: ledger entry: %w", err)
	}
	return e, nil
}

// publish makes rec visible once its registration is durable at idx, and
// returns it with the index it is visible at.
func (v *Vault) publish(ctx context.Context, rec Record, idx uint64) (Record, error) {
	fctx, cancel := finishContext(ctx)
	defer cancel()
	at, err := v.store.Publish(fctx, rec.ID, idx)
	if err != nil {
		return Record{}, fmt.Errorf("records: publish record registered at ledger index %d: %w", idx, err)
	}
	rec.LedgerIndex = at
	return rec, nil
}

// resume is Put of a record that exists already: s, stored under r.ID by
// an earlier attempt.
func (v *Vault) resume(ctx context.Context, r PutRequest, s Stored) (Record, error) {
	if s.Holder != r.Holder || s.Patient != v.pseud.Pseudonym(r.Patient) || s.Category != r.Category {
		return Record{}, fmt.Errorf("records: put: record %s exists for another request", r.ID)
	}
	if !s.Pending {
		return s.Record, nil // registered: the earlier attempt took effect
	}
	// The earlier attempt's outcome is unknown: is its registration in
	// the log by now?
	if v.opts.Sync != nil {
		if err := v.opts.Sync.SyncHead(ctx); err != nil {
			return Record{}, fmt.Errorf("records: look for the registration of record %s: %w", s.ID, err)
		}
		again, err := v.store.Meta(ctx, s.ID)
		if err != nil {
			return Record{}, fmt.Errorf("records: put: %w", err)
		}
		if !again.Pending {
			return again.Record, nil
		}
	}
	// Not yet: submit the very same registration again.
	entry, err := registration(s.Record)
	if err != nil {
		return Record{}, err
	}
	idx, err := v.ledger.Append(ctx, entry)
	if err != nil {
		// The earlier submission may still commit: whatever this one's
		// error, the record stays pending.
		return Record{}, v.keptPending(s.ID, err)
	}
	return v.publish(ctx, s.Record, idx)
}

// finishContext is for steps that must complete once a durable change
// happened, even if the caller has gone: ctx's values without its
// cancellation, bounded by finishTimeout.
func finishContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
}

func bindingOf(format int, r Record) binding {
	return binding{
		format:       format,
		id:           r.ID,
		holder:       r.Holder,
		patient:      r.Patient,
		category:     string(r.Category),
		contentType:  r.ContentType,
		resourceType: r.ResourceType,
	}
}

// visible reports whether a stored record may be read.
func visible(s Stored) bool { return !s.Pending && !s.Shredded }

// Read reads a visible record's metadata, calls authorize with it and,
// only if authorize returns nil, loads the record's sealed content and
// decrypts it. authorize is where the caller decides (and logs the
// decision) before any byte of the content, sealed or not, has been
// read: up to the decision a read does the same work whatever the
// record's size, and a read of a record that does not exist does what a
// read of one that exists does (Store.Meta). authorize's error is
// returned as is. A nil authorize does no access control (see Open).
//
// ErrNotFound for a record that does not exist, is pending or was
// shredded (authorize is not called), and for one shredded after
// authorize returned (its decision stands; there is no content to
// serve); ErrDecrypt if the stored record fails authentication; ErrNoKey
// if its KEK version is missing.
func (v *Vault) Read(ctx context.Context, id string, authorize func(Record) error) (Record, []byte, error) {
	s, sc, kek, err := v.permitted(ctx, id, authorize, true)
	if err != nil {
		return Record{}, nil, err
	}
	if sc.Pieces > 0 {
		// A streamed record: its envelope whole, from its pieces.
		if sc.Ciphertext, err = v.loadPieces(ctx, s, sc.Pieces); err != nil {
			return Record{}, nil, err
		}
	}
	// The ciphertext was loaded for this call (Store.Content): it is
	// decrypted in place, without a second buffer of its size.
	pt, err := openInPlace(kek, bindingOf(s.Format, s.Record), sc.WrappedKey, sc.Ciphertext)
	if err != nil {
		return Record{}, nil, fmt.Errorf("records: open %s: %w", id, err)
	}
	return s.Record, pt, nil
}

// permitted is Read up to the content: the metadata of a visible record,
// authorize's decision and, on a permit, the record's sealed content as
// the store keeps it (Store.Content: whole, or the piece count) and the
// KEK its data key is wrapped under. With inline, a streamed record
// larger than an inline answer may be (Options.MaxSize) is
// ErrInlineTooLarge, after authorize.
func (v *Vault) permitted(ctx context.Context, id string, authorize func(Record) error, inline bool) (Stored, SealedContent, KEK, error) {
	if !validID(id) {
		return Stored{}, SealedContent{}, KEK{}, ErrNotFound
	}
	s, err := v.store.Meta(ctx, id)
	switch {
	case errors.Is(err, ErrNotFound):
		// As a record that is not visible: the same error value, not
		// wrapped (no more work than that path).
		return Stored{}, SealedContent{}, KEK{}, ErrNotFound
	case err != nil:
		return Stored{}, SealedContent{}, KEK{}, fmt.Errorf("records: read: %w", err)
	}
	if !visible(s) {
		return Stored{}, SealedContent{}, KEK{}, ErrNotFound
	}
	if authorize != nil {
		if err := authorize(s.Record); err != nil {
			return Stored{}, SealedContent{}, KEK{}, err
		}
	}
	if !supportedFormat(s.Format) {
		return Stored{}, SealedContent{}, KEK{}, fmt.Errorf("records: open %s: %w: unsupported format %d", id, ErrDecrypt, s.Format)
	}
	if inline && s.Pieces > 0 && s.Size > v.opts.MaxSize {
		return Stored{}, SealedContent{}, KEK{}, fmt.Errorf("records: read %s: %w: %d bytes, inline answers carry up to %d", id, ErrInlineTooLarge, s.Size, v.opts.MaxSize)
	}
	// Permitted: now, and only now, the sealed content, by primary key.
	sc, err := v.store.Content(ctx, id)
	switch {
	case errors.Is(err, ErrNotFound):
		return Stored{}, SealedContent{}, KEK{}, ErrNotFound // shredded since the metadata was read
	case err != nil:
		return Stored{}, SealedContent{}, KEK{}, fmt.Errorf("records: read %s: %w", id, err)
	case sc.Format != s.Format:
		return Stored{}, SealedContent{}, KEK{}, fmt.Errorf("records: open %s: %w: format %d, metadata says %d", id, ErrDecrypt, sc.Format, s.Format)
	case sc.Pieces > 0 && sc.Format != FormatStream:
		return Stored{}, SealedContent{}, KEK{}, fmt.Errorf("records: open %s: %w: format %d in pieces", id, ErrDecrypt, sc.Format)
	}
	// The key version comes with the wrapped key: a rotation since the
	// metadata was read has rewrapped it.
	s.KeyVersion = sc.KeyVersion
	kek, err := v.keys.Key(ctx, s.Holder, sc.KeyVersion)
	if err != nil {
		return Stored{}, SealedContent{}, KEK{}, fmt.Errorf("records: open %s: %w", id, err)
	}
	return s, sc, kek, nil
}

// Open returns a visible record's metadata and decrypted content without
// access control: Read with no authorization step, for operators' tools
// and tests. Serving paths use Read.
func (v *Vault) Open(ctx context.Context, id string) (Record, []byte, error) {
	return v.Read(ctx, id, nil)
}

// ListByPatient returns the metadata of a patient's visible records,
// oldest first. Access control is the caller's.
func (v *Vault) ListByPatient(ctx context.Context, patient string) ([]Record, error) {
	if err := ValidatePatient(patient); err != nil {
		return nil, err
	}
	rs, err := v.store.ListByPatient(ctx, v.pseud.Pseudonym(patient))
	if err != nil {
		return nil, fmt.Errorf("records: list: %w", err)
	}
	return rs, nil
}

// RegistrationIndex is a Store that also indexes the record
// registrations it follows on the ledger, whoever holds the records
// (recordstore.Store).
type RegistrationIndex interface {
	// Registered returns the records of patient (a pseudonym) whose
	// registrations were opened here and that are not shredded.
	Registered(ctx context.Context, patient string) ([]Record, error)
}

// ErrNoRegistrationIndex: the vault's store keeps no registrations index.
var ErrNoRegistrationIndex = errors.New("records: the store keeps no registrations index")

// Registered lists the records of patient registered on the ledger by any
// holder, as far as this gateway opened their registrations (metadata
// only, from the entries; records held here are included as registered).
// ErrNoRegistrationIndex if the store keeps no such index.
func (v *Vault) Registered(ctx context.Context, patient string) ([]Record, error) {
	if err := ValidatePatient(patient); err != nil {
		return nil, err
	}
	idx, ok := v.store.(RegistrationIndex)
	if !ok {
		return nil, ErrNoRegistrationIndex
	}
	rs, err := idx.Registered(ctx, v.pseud.Pseudonym(patient))
	if err != nil {
		return nil, fmt.Errorf("records: registrations: %w", err)
	}
	return rs, nil
}

// Shred crypto-shreds a record held by holder: the wrapped data key and
// the ciphertext are destroyed (a tombstone with the metadata stays), and
// record.shredded is appended to the ledger. It returns the entry's index.
// Afterwards every read gets ErrNotFound, and nothing stored can recover
// the content, even with the KEK.
//
// ErrNotFound if the record does not exist, is not visible, or is held by
// another organisation, or was shredded and logged already. The key is
// destroyed before the append: if the append fails, Shred returns the
// error, and a retry (or Recover) logs the shredding.
func (v *Vault) Shred(ctx context.Context, holder, id string) (uint64, error) {
	return v.shred(ctx, holder, id, false)
}

// ShredRetry is Shred repeated after an attempt whose outcome is unknown
// (an idempotency key's retry): a record whose shredding is logged
// already is answered with that entry's index instead of ErrNotFound, and
// a shredding not known to be logged is looked for on the ledger
// (Options.Sync) before it is logged again.
func (v *Vault) ShredRetry(ctx context.Context, holder, id string) (uint64, error) {
	return v.shred(ctx, holder, id, true)
}

func (v *Vault) shred(ctx context.Context, holder, id string, retry bool) (uint64, error) {
	if !validID(id) {
		return 0, ErrNotFound
	}
	s, err := v.store.Meta(ctx, id)
	if err != nil {
		return 0, fmt.Errorf("records: shred: %w", err)
	}
	if s.Pending || s.Holder != holder {
		return 0, ErrNotFound
	}
	if s.Shredded && !s.ShredLogged && v.opts.Sync != nil {
		// An earlier record.shredded may have been committed late.
		if err := v.opts.Sync.SyncHead(ctx); err != nil {
			return 0, fmt.Errorf("records: shred: look for the shredding on the ledger: %w", err)
		}
		if s, err = v.store.Meta(ctx, id); err != nil {
			return 0, fmt.Errorf("records: shred: %w", err)
		}
	}
	if s.Shredded {
		switch {
		case s.ShredLogged && retry:
			return s.ShredIndex, nil
		case s.ShredLogged:
			return 0, ErrNotFound
		}
		return v.logShred(ctx, s.Record)
	}
	if err := v.store.Shred(ctx, id, v.opts.Now().UTC()); err != nil {
		return 0, fmt.Errorf("records: shred: %w", err)
	}
	return v.logShred(ctx, s.Record)
}

// logShred appends record.shredded for r and records its index.
func (v *Vault) logShred(ctx context.Context, r Record) (uint64, error) {
	fctx, cancel := finishContext(ctx)
	defer cancel()
	entry, err := ledger.NewEntry(r.Holder, &ledger.RecordShredded{
		RecordID: r.ID,
		Holder:   r.Holder,
		Patient:  r.Patient,
	})
	if err != nil {
		return 0, fmt.Errorf("records: ledger entry: %w", err)
	}
	idx, err := v.ledger.Append(fctx, entry)
	if err != nil {
		return 0, fmt.Errorf("records: shredded, but not yet logged: %w", err)
	}
	if err := v.store.LogShred(fctx, r.ID, idx); err != nil {
		return 0, fmt.Errorf("records: shred logged at ledger index %d: %w", idx, err)
	}
	return idx, nil
}

// RecoverStats reports what Recover did.
type RecoverStats struct {
	DeletedPending int64 // pending records deleted: their registration is known absent
	// DeletedUnfinished counts the streamed uploads deleted that never
	// finished (their registration was never submitted).
	DeletedUnfinished int64
	LoggedShreds      int // record.shredded entries appended late
}

// Recover repairs what an interrupted Put or Shred left. Call it at start,
// before serving. It first brings the store's registrations up to the
// head of the log (Options.Sync), so that pending records whose
// registration was committed after all become visible. It then deletes
// the pending records whose registration is known absent: those older
// than the pending timeout, unless the ledger may commit late
// (Options.LateCommits), in which case no pending record is ever deleted
// here (they are counted in the log); nor if it cannot catch up (the
// node is behind its peers). Streamed uploads that never finished and
// are older than the pending timeout are deleted in every case: their
// registration was never submitted. Finally it appends the missing
// record.shredded entries of records shredded before a failed append.
func (v *Vault) Recover(ctx context.Context) (RecoverStats, error) {
	var st RecoverStats
	caughtUp := true
	if v.opts.Sync != nil {
		if err := v.opts.Sync.SyncHead(ctx); err != nil {
			// Not fatal: the follower publishes what commits later. But
			// what is not known cannot be known absent: delete nothing.
			caughtUp = false
			v.opts.Logger.Warn("records: recover: could not catch up with the ledger; pending records are kept",
				slog.Any("error", err))
		}
	}
	if ps, ok := v.store.(PieceStore); ok {
		// An upload lasts at most PendingTimeout (PutStream): an older
		// unfinished one was cut off by the end of its process.
		n, err := ps.DeleteUnfinished(ctx, v.opts.Now().UTC().Add(-v.opts.PendingTimeout))
		if err != nil {
			return st, fmt.Errorf("records: recover: %w", err)
		}
		st.DeletedUnfinished = n
		if n > 0 {
			v.opts.Logger.Info("records: deleted unfinished streamed uploads", slog.Int64("count", n))
		}
	}
	if v.opts.LateCommits || !caughtUp {
		n, err := v.store.CountPending(ctx)
		if err != nil {
			return st, fmt.Errorf("records: recover: %w", err)
		}
		if n > 0 {
			v.opts.Logger.Warn("records: pending records kept: their registration may still be committed; each becomes visible if it is, and a retried upload with its Idempotency-Key submits it again",
				slog.Int64("count", n))
		}
	} else {
		n, err := v.store.DeletePendingBefore(ctx, v.opts.Now().UTC().Add(-v.opts.PendingTimeout))
		if err != nil {
			return st, fmt.Errorf("records: recover: %w", err)
		}
		st.DeletedPending = n
		if n > 0 {
			v.opts.Logger.Info("records: deleted stale pending records", slog.Int64("count", n))
		}
	}
	unlogged, err := v.store.UnloggedShreds(ctx)
	if err != nil {
		return st, fmt.Errorf("records: recover: %w", err)
	}
	for _, s := range unlogged {
		if _, err := v.logShred(ctx, s.Record); err != nil {
			return st, fmt.Errorf("records: recover: %w", err)
		}
		st.LoggedShreds++
	}
	if st.LoggedShreds > 0 {
		v.opts.Logger.Info("records: logged earlier shreddings", slog.Int("count", st.LoggedShreds))
	}
	return st, nil
}

// validID reports whether id looks like a record ID (a UUID), so that
// junk never reaches the database.
func validID(id string) bool {
	if len(id) != 36 {
		return false
	}
	_, err := uuid.Parse(id)
	return err == nil
}
