package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
)

// APIBodies is a BodySource over a gateway's authenticated ledger API: it
// reads each entry with GET <Base>/v1/ledger/entries/{index} under a
// regulator's access token (audit.read: regulators read every body). The
// response is the entry's receipt (client.EntryProof) carrying, besides
// the leaf ("entry"), the signed header ("header") and the opening
// ("opening"), each either as the canonical JSON itself or as a base64
// string of its bytes.
type APIBodies struct {
	// Base is the gateway's base URL (https://gateway.example).
	Base string
	// Token is the regulator's bearer access token.
	Token string
	// Client: default http.DefaultClient.
	Client *http.Client
	// Concurrency bounds the requests in flight. Default 8.
	Concurrency int
}

var _ BodySource = (*APIBodies)(nil)

// maxBodyResponse bounds one entry's response: a receipt with a proof,
// the header and an opening of at most ledger.MaxOpeningSize.
const maxBodyResponse = 1 << 20

// wireBody is what APIBodies reads of an entry's response.
type wireBody struct {
	Index   *uint64         `json:"index"`
	Entry   json.RawMessage `json:"entry"`
	Header  json.RawMessage `json:"header"`
	Opening json.RawMessage `json:"opening"`
}

// Bodies implements BodySource.
func (a *APIBodies) Bodies(ctx context.Context, start, end uint64) ([]Body, error) {
	if start > end {
		return nil, fmt.Errorf("bodies [%d, %d): invalid range", start, end)
	}
	base, err := url.Parse(strings.TrimSuffix(a.Base, "/"))
	if err != nil {
		return nil, fmt.Errorf("gateway URL: %w", err)
	}
	c := a.Client
	if c == nil {
		c = http.DefaultClient
	}
	workers := a.Concurrency
	if workers <= 0 {
		workers = 8
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	n := int(end - start)
	out := make([]Body, n)
	errs := make([]error, n)
	var mu sync.Mutex
	next := 0
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= n || ctx.Err() != nil {
					return
				}
				if out[i], errs[i] = a.body(ctx, c, base, start+uint64(i)); errs[i] != nil {
					cancel()
				}
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, firstError(errs)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

func firstError(errs []error) error {
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
	}
	return errors.Join(errs...)
}

func (a *APIBodies) body(ctx context.Context, c *http.Client, base *url.URL, index uint64) (Body, error) {
	u := base.JoinPath("v1", "ledger", "entries", strconv.FormatUint(index, 10))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return Body{}, err
	}
	req.Header.Set("Authorization", "Bearer "+a.Token)
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return Body{}, fmt.Errorf("entry %d: %w", index, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyResponse+1))
	if err != nil {
		return Body{}, fmt.Errorf("entry %d: %w", index, err)
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return Body{}, fmt.Errorf("entry %d: HTTP %d: the token does not let this caller read entry bodies (a regulator's token with audit.read does)", index, resp.StatusCode)
	case resp.StatusCode != http.StatusOK:
		return Body{}, fmt.Errorf("entry %d: HTTP %d", index, resp.StatusCode)
	case len(b) > maxBodyResponse:
		return Body{}, fmt.Errorf("entry %d: response too large", index)
	}
	var w wireBody
	if err := json.Unmarshal(b, &w); err != nil {
		return Body{}, fmt.Errorf("entry %d: %w", index, err)
	}
	if w.Index == nil || *w.Index != index {
		return Body{}, fmt.Errorf("entry %d: the API answered for another index", index)
	}
	var body Body
	for _, f := range []struct {
		name string
		raw  json.RawMessage
		dst  *[]byte
	}{{"entry", w.Entry, &body.Leaf}, {"header", w.Header, &body.Header}, {"opening", w.Opening, &body.Opening}} {
		if *f.dst, err = rawOrBase64(f.raw); err != nil {
			return Body{}, fmt.Errorf("entry %d: %s: %w", index, f.name, err)
		}
	}
	return body, nil
}

// rawOrBase64 returns the bytes of a JSON member that is either the
// canonical JSON value itself or a base64 string of its bytes; nil when
// absent.
func rawOrBase64(m json.RawMessage) ([]byte, error) {
	switch {
	case len(m) == 0 || string(m) == "null":
		return nil, nil
	case m[0] == '"':
		var b []byte
		if err := json.Unmarshal(m, &b); err != nil {
			return nil, err
		}
		return b, nil
	}
	return []byte(m), nil
}
