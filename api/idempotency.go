package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/healthgw/healthgw/access"
	"github.com/healthgw/healthgw/idempotency"
)

// HeaderIdempotencyKey names a state-changing request's idempotency key
// (draft-ietf-httpapi-idempotency-key-header): a Structured Fields string,
// such as "8e03978e-40d5-43e8-bc93-6894a57f9324" with its quotes (a bare
// value without quotes is accepted too). Every response of a keyed route
// carries the key back; when the client sent none the gateway makes one,
// so that a write answered 503 can still be repeated safely.
const HeaderIdempotencyKey = "Idempotency-Key"

// HeaderIdempotentReplayed marks a response replayed from the key's
// completed write ("true").
const HeaderIdempotentReplayed = "Idempotent-Replayed"

// IdempotencyKeys keeps idempotency keys (idemstore.Store).
type IdempotencyKeys interface {
	// Begin starts an attempt: a claim (with the ID the key fixes, or
	// the completed write's response to replay), idempotency.ErrMismatch
	// or an idempotency.InProgressError.
	Begin(ctx context.Context, r idempotency.Request) (idempotency.Claim, error)
	// Complete stores the write's result for replay.
	Complete(ctx context.Context, c idempotency.Claim, r idempotency.Response) error
	// Release ends an attempt whose outcome is unknown: the key stays.
	Release(ctx context.Context, c idempotency.Claim) error
	// Forget deletes the key of an attempt that had no effect.
	Forget(ctx context.Context, c idempotency.Claim) error
}

// WithIdempotency makes the state-changing routes keep their
// Idempotency-Key in k. Without it they refuse requests that carry one
// (the gateway could not keep the promise).
func WithIdempotency(k IdempotencyKeys) Option { return func(s *Server) { s.idem = k } }

// Context keys of a keyed write.
const (
	ctxIdemClaim = "healthgw.idempotency.claim"
	ctxIdemKey   = "healthgw.idempotency.key"
	ctxIdemLoc   = "healthgw.idempotency.location"
	// ctxIdemRoute marks a keyed route (with or without a key store):
	// its server errors say the outcome is unknown.
	ctxIdemRoute = "healthgw.idempotency.route"
)

// maxReplayBody bounds a response stored for replay; a larger one is not
// stored, and a repeat re-runs the write (which finds its effect).
const maxReplayBody = 1 << 20

// settleTimeout bounds storing a key's outcome after the response.
const settleTimeout = 10 * time.Second

// errKeysNotKept: a key sent to a gateway that keeps none.
var errKeysNotKept = &Error{Status: http.StatusBadRequest, Code: "invalid_request", Message: "This gateway does not keep idempotency keys: send the request without Idempotency-Key."}

// locator returns the URL path of the resource a keyed write makes or
// changes ("" if it has none), from the ID its key fixed.
type locator func(c *gin.Context, id string) string

// idempotent is the middleware of a state-changing route (named op, as
// "POST /v1/records"): it reads the body (after limitBody), takes the
// request's key (or makes one), and either replays the key's completed
// write, refuses a mismatch (422) or a concurrent attempt (409), or runs
// the handler under the key's lease with the ID the key fixed
// (idemClaim) and stores the outcome: a 2xx is kept and replayed to
// every repeat; a 4xx of a first attempt changed nothing and the key is
// forgotten; anything else leaves the outcome unknown, and the key stays
// for the retry that will find out.
func (s *Server) idempotent(op string, newID func() string, loc locator) gin.HandlerFunc {
	return s.keyed(op, newID, loc, bodyFingerprint, 0)
}

// fingerprinter returns the fingerprint of a keyed request
// (idempotency.Fingerprint); clientKey says whether the client sent the
// key (else the gateway made it). An *Error refuses the request.
type fingerprinter func(c *gin.Context, clientKey bool) ([32]byte, error)

// bodyFingerprint covers the method, path, query and the whole body,
// which it reads (after limitBody) and puts back for the handler.
func bodyFingerprint(c *gin.Context, _ bool) ([32]byte, error) {
	body, err := io.ReadAll(c.Request.Body)
	if err != nil {
		return [32]byte{}, err // a *http.MaxBytesError is 413
	}
	c.Request.Body = io.NopCloser(bytes.NewReader(body))
	return idempotency.Fingerprint(c.Request.Method, c.Request.URL.Path, c.Request.URL.RawQuery, body), nil
}

// DefaultUploadLease is the lease of a keyed streamed upload's attempt
// (idempotency.Request.Lease): longer than records.DefaultPendingTimeout,
// which bounds the upload itself. The attempt must end within three
// quarters of it (see keyed).
const DefaultUploadLease = 20 * time.Minute

// keyed is idempotent with the request's fingerprint made by fp, and an
// attempt's lease of at least lease (0: the key store's).
func (s *Server) keyed(op string, newID func() string, loc locator, fp fingerprinter, lease time.Duration) gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Set(ctxIdemRoute, true)
		vals := c.Request.Header.Values(HeaderIdempotencyKey)
		if s.idem == nil {
			if len(vals) > 0 {
				s.fail(c, errKeysNotKept)
				return
			}
			c.Next()
			return
		}
		key, err := parseIdempotencyKey(vals)
		if err != nil {
			s.fail(c, err)
			return
		}
		clientKey := key != ""
		if !clientKey {
			key = uuid.NewString()
		}
		c.Header(HeaderIdempotencyKey, sfString(key))
		c.Set(ctxIdemKey, key)
		fingerprint, err := fp(c, clientKey)
		if err != nil {
			s.fail(c, err)
			return
		}
		ctx := c.Request.Context()
		claim, err := s.idem.Begin(ctx, idempotency.Request{
			Scope:       s.idempotencyScope(principal(c)),
			Key:         key,
			Operation:   op,
			Fingerprint: fingerprint,
			NewID:       newID,
			Lease:       lease,
		})
		var inProgress *idempotency.InProgressError
		switch {
		case errors.Is(err, idempotency.ErrMismatch):
			s.fail(c, errKeyReused)
			return
		case errors.As(err, &inProgress):
			c.Header("Retry-After", strconv.Itoa(max(1, int(inProgress.RetryAfter.Round(time.Second)/time.Second))))
			s.fail(c, errKeyInProgress)
			return
		case err != nil:
			s.fail(c, fmt.Errorf("idempotency key: %w", err))
			return
		}
		if loc != nil {
			c.Set(ctxIdemLoc, loc(c, claim.ResourceID))
		}
		if r := claim.Replay; r != nil {
			if r.Location != "" {
				c.Header("Location", r.Location)
			}
			c.Header(HeaderIdempotentReplayed, "true")
			c.Data(r.Status, r.ContentType, r.Body)
			c.Abort()
			return
		}
		c.Set(ctxIdemClaim, claim)
		// The attempt must be over before its lease ends, or a retry
		// could run beside it.
		wctx, cancel := context.WithTimeout(ctx, claim.For*3/4)
		defer cancel()
		c.Request = c.Request.WithContext(wctx)
		w := &capturingWriter{ResponseWriter: c.Writer}
		c.Writer = w
		c.Next()
		s.settle(c, claim, w)
	}
}

// settle stores the outcome of a keyed attempt (see idempotent).
func (s *Server) settle(c *gin.Context, claim idempotency.Claim, w *capturingWriter) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request.Context()), settleTimeout)
	defer cancel()
	status := w.Status()
	var (
		err  error
		what string
	)
	switch {
	case status >= 200 && status < 300 && !w.overflow:
		what = "complete"
		err = s.idem.Complete(ctx, claim, idempotency.Response{
			Status: status, ContentType: w.Header().Get("Content-Type"), Location: w.Header().Get("Location"), Body: w.body.Bytes(),
		})
	case status >= 400 && status < 500 && !claim.Retry():
		what = "forget"
		err = s.idem.Forget(ctx, claim)
	default:
		what = "release"
		err = s.idem.Release(ctx, claim)
	}
	if err != nil {
		// The key stays pending: a repeat after its lease finds the
		// write's effect, as after any unknown outcome.
		s.log.LogAttrs(ctx, slog.LevelWarn, "idempotency key not settled",
			slog.String("request_id", requestID(c)), slog.String("step", what), slog.String("err", err.Error()))
	}
}

// idemClaim returns the request's claim on its key (zero if the route is
// not keyed or the gateway keeps no keys).
func idemClaim(c *gin.Context) idempotency.Claim {
	v, _ := c.Get(ctxIdemClaim)
	cl, _ := v.(idempotency.Claim)
	return cl
}

// consentWrite is the access.Write of a keyed consent change.
func consentWrite(c *gin.Context) access.Write {
	cl := idemClaim(c)
	return access.Write{ID: cl.ResourceID, At: cl.Started, Retry: cl.Retry()}
}

// idempotencyScope is the scope of p's keys: its organisation, or for a
// patient the ledger pseudonym (never the patient's identifier).
func (s *Server) idempotencyScope(p Principal) string {
	if p.Org != "" {
		return "org:" + p.Org
	}
	if s.consent.Pseud != nil {
		return "patient:" + s.consent.Pseud.Pseudonym(p.Patient)
	}
	return "patient:" + idempotency.HashKey(p.Patient)
}

// Errors of keyed requests.
var (
	errKeyReused     = &Error{Status: http.StatusUnprocessableEntity, Code: "idempotency_key_reused", Message: "This Idempotency-Key was used for a different request (another route, path or body). Send a new key with a new request; repeat a request byte for byte with its own key."}
	errKeyInProgress = &Error{Status: http.StatusConflict, Code: "request_in_progress", Message: "A request with this Idempotency-Key is still being processed. Repeat it once that one is done (see Retry-After)."}
)

// parseIdempotencyKey reads the Idempotency-Key header: one value, a
// Structured Fields string (RFC 8941 section 3.3.3) or a bare key of
// visible characters; "" if the request has none.
func parseIdempotencyKey(vals []string) (string, error) {
	bad := func(why string) error {
		return badRequest("Idempotency-Key " + why + ": send one quoted string of 1-" + strconv.Itoa(idempotency.MaxKeyLength) + " printable ASCII characters, such as \"8e03978e-40d5-43e8-bc93-6894a57f9324\".")
	}
	switch len(vals) {
	case 0:
		return "", nil
	case 1:
	default:
		return "", bad("is repeated")
	}
	v := strings.Trim(vals[0], " \t")
	var key string
	if strings.HasPrefix(v, `"`) {
		var b strings.Builder
		i := 1
		for ; i < len(v) && v[i] != '"'; i++ {
			ch := v[i]
			if ch == '\\' {
				i++
				if i == len(v) || (v[i] != '"' && v[i] != '\\') {
					return "", bad("has a bad escape")
				}
				ch = v[i]
			}
			b.WriteByte(ch)
		}
		if i != len(v)-1 {
			return "", bad("is not one string")
		}
		key = b.String()
	} else {
		if strings.ContainsAny(v, "\"\\ \t;,") {
			return "", bad("is malformed")
		}
		key = v
	}
	if !idempotency.ValidKey(key) {
		return "", bad("is empty, too long or not printable ASCII")
	}
	return key, nil
}

// sfString serialises key as a Structured Fields string.
func sfString(key string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(key) + `"`
}

// capturingWriter keeps a copy of the response body (up to
// maxReplayBody) for replay.
type capturingWriter struct {
	gin.ResponseWriter
	body     bytes.Buffer
	overflow bool
}

func (w *capturingWriter) keep(n int, b func()) {
	if w.body.Len()+n > maxReplayBody {
		w.overflow = true
		return
	}
	b()
}

// Unwrap returns the underlying writer (http.ResponseController: a
// streamed upload extends its read deadline through it).
func (w *capturingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *capturingWriter) Write(b []byte) (int, error) {
	w.keep(len(b), func() { w.body.Write(b) })
	return w.ResponseWriter.Write(b)
}

func (w *capturingWriter) WriteString(s string) (int, error) {
	w.keep(len(s), func() { w.body.WriteString(s) })
	return w.ResponseWriter.WriteString(s)
}

// outcomeUnknown is what a write answered with a server error adds to its
// message: it may have taken effect, and how to find out.
const outcomeUnknown = "This write's outcome is unknown: it may still take effect. Repeat the request with the same Idempotency-Key (idempotency_key): the repeat answers with the write's result once it is known, and never makes it twice."

// outcomeUnknownNoKey is outcomeUnknown for a write without a key.
const outcomeUnknownNoKey = "This write's outcome is unknown: it may still take effect. Look for it before you repeat it, or send writes with an Idempotency-Key."

// keyedWrite reports whether c is a request of a keyed (state-changing,
// appending) route.
func keyedWrite(c *gin.Context) bool { return c.GetBool(ctxIdemRoute) }
