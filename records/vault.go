package records

import (
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
	// MaxSize is the largest record content accepted (DefaultMaxSize).
	MaxSize int64
	// PendingTimeout: see DefaultPendingTimeout.
	PendingTimeout time.Duration
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
}

// validate checks r and returns the normalised content type and resource
// type. Errors wrap ErrInvalid or ErrTooLarge.
func (v *Vault) validate(r PutRequest) (contentType, resourceType string, err error) {
	if !orgPattern.MatchString(r.Holder) {
		return "", "", invalidf("holder is not an organisation ID")
	}
	if err := ValidatePatient(r.Patient); err != nil {
		return "", "", err
	}
	if !r.Category.Valid() {
		return "", "", invalidf("unknown category; want one of %s", categoryList())
	}
	ct, err := NormalizeContentType(r.ContentType)
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
	} else if rt != "" && !resourceTypePattern.MatchString(rt) {
		return "", "", invalidf("resource_type is not a FHIR resource type name (like Observation)")
	}
	return ct, rt, nil
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
// durable; if the append fails, nothing is kept. The returned Record has
// the new ID, the commitment and the ledger index.
//
// Errors: ErrInvalid and ErrTooLarge for bad input (nothing stored,
// nothing appended), ErrNoKey if the holder has no KEK, and the ledger's
// errors (e.g. ledger.ErrUnavailable) wrapped.
func (v *Vault) Put(ctx context.Context, r PutRequest) (Record, error) {
	ct, rt, err := v.validate(r)
	if err != nil {
		return Record{}, err
	}
	kek, err := v.keys.Current(ctx, r.Holder)
	if err != nil {
		return Record{}, fmt.Errorf("records: key for %s: %w", r.Holder, err)
	}
	rec := Record{
		ID:           uuid.NewString(),
		Holder:       r.Holder,
		Patient:      v.pseud.Pseudonym(r.Patient),
		Category:     r.Category,
		ResourceType: rt,
		ContentType:  ct,
		Size:         int64(len(r.Content)),
		KeyVersion:   kek.Version(),
		CreatedAt:    v.opts.Now().UTC(),
	}
	s, err := seal(kek, bindingOf(FormatVersion, rec), r.Content)
	if err != nil {
		return Record{}, fmt.Errorf("records: seal: %w", err)
	}
	sum := sha256.Sum256(s.ciphertext)
	rec.Commitment = hex.EncodeToString(sum[:])
	entry, err := ledger.NewEntry(rec.Holder, &ledger.RecordRegistered{
		RecordID:     rec.ID,
		Holder:       rec.Holder,
		Patient:      rec.Patient,
		Category:     string(rec.Category),
		ResourceType: rec.ResourceType,
		Commitment:   rec.Commitment,
	})
	if err != nil {
		return Record{}, fmt.Errorf("records: ledger entry: %w", err)
	}
	err = v.store.Create(ctx, Stored{
		Record:     rec,
		Format:     FormatVersion,
		Ciphertext: s.ciphertext,
		WrappedKey: s.wrappedKey,
		Pending:    true,
	})
	if err != nil {
		return Record{}, fmt.Errorf("records: store: %w", err)
	}
	idx, err := v.ledger.Append(ctx, entry)
	if err != nil && errors.Is(err, ledger.ErrUnavailable) {
		// The outcome is unknown: the registration may still be
		// committed (a consortium transaction that reached a mempool).
		// Deleting the record now could leave a registration without
		// its record, so the pending record stays, unreadable.
		v.opts.Logger.Warn("records: registration outcome unknown; the pending record is kept",
			slog.String("record_id", rec.ID))
		return Record{}, fmt.Errorf("records: register on ledger (outcome unknown; record %s kept pending): %w", rec.ID, err)
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
	rec.LedgerIndex = idx
	fctx, cancel := finishContext(ctx)
	defer cancel()
	if err := v.store.Publish(fctx, rec.ID, idx); err != nil {
		return Record{}, fmt.Errorf("records: publish record registered at ledger index %d: %w", idx, err)
	}
	return rec, nil
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

// Read loads a visible record once, calls authorize with its metadata
// and, only if authorize returns nil, decrypts it. authorize is where the
// caller decides (and logs the decision) before any byte of content
// exists in memory; its error is returned as is. A nil authorize does no
// access control (see Open).
//
// ErrNotFound for a record that does not exist, is pending or was
// shredded (authorize is not called); ErrDecrypt if the stored record
// fails authentication; ErrNoKey if its KEK version is missing.
func (v *Vault) Read(ctx context.Context, id string, authorize func(Record) error) (Record, []byte, error) {
	if !validID(id) {
		return Record{}, nil, ErrNotFound
	}
	s, err := v.store.Load(ctx, id)
	if err != nil {
		return Record{}, nil, fmt.Errorf("records: read: %w", err)
	}
	if !visible(s) {
		return Record{}, nil, ErrNotFound
	}
	if authorize != nil {
		if err := authorize(s.Record); err != nil {
			return Record{}, nil, err
		}
	}
	if s.Format != FormatVersion {
		return Record{}, nil, fmt.Errorf("records: open %s: %w: unsupported format %d", id, ErrDecrypt, s.Format)
	}
	kek, err := v.keys.Key(ctx, s.Holder, s.KeyVersion)
	if err != nil {
		return Record{}, nil, fmt.Errorf("records: open %s: %w", id, err)
	}
	pt, err := open(kek, bindingOf(s.Format, s.Record), s.WrappedKey, s.Ciphertext)
	if err != nil {
		return Record{}, nil, fmt.Errorf("records: open %s: %w", id, err)
	}
	return s.Record, pt, nil
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

// Shred crypto-shreds a record held by holder: the wrapped data key and
// the ciphertext are destroyed (a tombstone with the metadata stays), and
// record.shredded is appended to the ledger. It returns the entry's index.
// Afterwards every read gets ErrNotFound, and nothing stored can recover
// the content, even with the KEK.
//
// ErrNotFound if the record does not exist, is not visible, or is held by
// another organisation. The key is destroyed before the append: if the
// append fails, Shred returns the error, and a retry (or Recover) logs the
// shredding.
func (v *Vault) Shred(ctx context.Context, holder, id string) (uint64, error) {
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
	if s.Shredded {
		if s.ShredLogged {
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
	DeletedPending int64 // stale pending records deleted
	LoggedShreds   int   // record.shredded entries appended late
}

// Recover repairs what an interrupted Put or Shred left: it deletes
// pending records older than the pending timeout (their append never
// completed, so they were never acknowledged), and appends the missing
// record.shredded entries of records shredded before a failed append.
// Call it at start.
func (v *Vault) Recover(ctx context.Context) (RecoverStats, error) {
	var st RecoverStats
	n, err := v.store.DeletePendingBefore(ctx, v.opts.Now().UTC().Add(-v.opts.PendingTimeout))
	if err != nil {
		return st, fmt.Errorf("records: recover: %w", err)
	}
	st.DeletedPending = n
	if n > 0 {
		v.opts.Logger.Info("records: deleted stale pending records", slog.Int64("count", n))
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
