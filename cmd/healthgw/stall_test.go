package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/ledger"
)

// TestConcurrentWritersNoStall starts a gateway on SQLite several times and
// hits it with 64 concurrent writers (record uploads and consent grants:
// vault, projections and ledger writes on one database). Every write must
// be answered 201 — no 5xx, no "database is locked" — and every
// acknowledged write must be on the ledger at the index it was given.
//
// The stall this guards against (gorm's prepared-statement cache on
// SQLite: a write transaction that met a new statement waited for a pool
// connection while every connection waited for SQLite's write lock) needs
// writers to pile up on a fresh start. Left to chance that is rare under
// the race detector: with the cache put back, 30 starts did not show it.
// So each start holds the write lock itself until the writers have taken
// every connection and one more waits for one, then lets them all go at
// once: with the cache put back, about one start in five then stalls
// (and without the race detector the first one does).
func TestConcurrentWritersNoStall(t *testing.T) {
	starts := 8
	if testing.Short() {
		starts = 2
	}
	const writers = 64
	for i := range starts {
		t.Run(fmt.Sprintf("start=%d", i), func(t *testing.T) {
			g := newTestGateway(t)
			atok := g.token(g.register("hosp-a", auth.KindHospital), "")
			g.register("hosp-b", auth.KindHospital)
			ptok := g.patientToken("pat-1")
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: writers}}
			defer client.CloseIdleConnections()
			sqlDB, err := g.db.DB()
			if err != nil {
				t.Fatal(err)
			}
			waited := sqlDB.Stats().WaitCount
			hold := g.db.Begin() // BEGIN IMMEDIATE: SQLite's write lock
			if hold.Error != nil {
				t.Fatal(hold.Error)
			}
			released := false
			release := func() {
				if !released {
					released = true
					if err := hold.Rollback().Error; err != nil {
						t.Errorf("release the write lock: %v", err)
					}
				}
			}
			defer release()
			type ack struct {
				kind  string
				id    string
				index uint64
			}
			acks := make(chan ack, writers)
			var wg sync.WaitGroup
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var body map[string]any
					tok, path := atok, "/v1/records"
					if w%2 == 0 {
						body = map[string]any{"patient": "pat-1", "category": "labs", "content_type": "text/plain", "content": base64.StdEncoding.EncodeToString(fmt.Appendf(nil, "result %d", w))}
					} else {
						tok, path = ptok, "/v1/consents"
						body = map[string]any{"grantee": map[string]string{"org": "hosp-b"}, "categories": []string{"labs"}, "purposes": []string{"TREAT"}}
					}
					status, b, err := postJSON(t.Context(), client, g.url+path, tok, body)
					if err != nil {
						t.Errorf("writer %d: %v", w, err)
						return
					}
					if status != http.StatusCreated {
						t.Errorf("writer %d: %s answered %d %s", w, path, status, b)
						return
					}
					if w%2 == 0 {
						var r struct {
							ID          string `json:"id"`
							LedgerIndex uint64 `json:"ledger_index"`
						}
						if err := json.Unmarshal(b, &r); err != nil {
							t.Errorf("writer %d: %v", w, err)
							return
						}
						acks <- ack{"record", r.ID, r.LedgerIndex}
						return
					}
					var r struct {
						Consent struct {
							ID          string `json:"id"`
							LedgerIndex uint64 `json:"ledger_index"`
						} `json:"consent"`
					}
					if err := json.Unmarshal(b, &r); err != nil {
						t.Errorf("writer %d: %v", w, err)
						return
					}
					acks <- ack{"consent", r.Consent.ID, r.Consent.LedgerIndex}
				}()
			}
			// Every connection taken (writers wait on theirs for the
			// lock) and a writer waiting for one: let them go.
			// The pool has no notification: poll its statistics until
			// the condition holds, within a scaled bound.
			deadline := time.NewTimer(scaledTimeout(time.Minute))
			tick := time.NewTicker(5 * time.Millisecond)
			for sqlDB.Stats().WaitCount == waited {
				select {
				case <-deadline.C:
					release()
					wg.Wait()
					t.Fatalf("the writers never took every database connection (%+v)", sqlDB.Stats())
				case <-tick.C:
				}
			}
			tick.Stop()
			deadline.Stop()
			release()
			wg.Wait()
			close(acks)
			n := 0
			for a := range acks {
				n++
				read, err := g.ledger.Read(t.Context(), a.index, a.index+1)
				if err != nil {
					t.Fatalf("acknowledged %s %s at %d: %v", a.kind, a.id, a.index, err)
				}
				e := read[0]
				switch b := e.Body.(type) {
				case *ledger.RecordRegistered:
					if a.kind != "record" || b.RecordID != a.id {
						t.Errorf("entry %d is record %s, acknowledged %s %s", a.index, b.RecordID, a.kind, a.id)
					}
				case *ledger.ConsentGranted:
					if a.kind != "consent" || b.ConsentID != a.id {
						t.Errorf("entry %d is consent %s, acknowledged %s %s", a.index, b.ConsentID, a.kind, a.id)
					}
				default:
					t.Errorf("entry %d is %s, acknowledged %s %s", a.index, e.Type, a.kind, a.id)
				}
			}
			if n != writers && !t.Failed() {
				t.Errorf("%d acknowledged writes, want %d", n, writers)
			}
		})
		if t.Failed() {
			return
		}
	}
}

// postJSON posts body and returns the status and response body. The
// request is bounded: a stalled gateway fails the test instead of
// hanging it.
func postJSON(ctx context.Context, c *http.Client, url, token string, body any) (int, []byte, error) {
	j, err := json.Marshal(body)
	if err != nil {
		return 0, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(j))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}
