package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/healthgw/healthgw/auth"
)

// TestConsortiumRevocationAtHead: a patient grants and revokes at node 2
// while hospital C reads hospital A's record at node 1 (A's gateway) from
// several goroutines at once. No read that starts after the revocation is
// acknowledged at node 2 is permitted, in any round: node 1 decides only
// at the head of the log, and the revocation is acknowledged once the
// connected nodes applied it. No projection follower runs in this test,
// so node 1 learns of node 2's entries only through the read path.
func TestConsortiumRevocationAtHead(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a four-validator network")
	}
	const (
		rounds      = 8
		readers     = 4
		readsAfter  = 3 // reads each reader starts after the acknowledgement
		patient     = "pat-1"
		maxAttempts = 200
	)
	c := newConsortium(t, 4)
	n1, n2 := c.gws[0], c.gws[1]
	hospA := n1.register("hosp-a", auth.KindHospital)
	hospC := n1.register("hosp-c", auth.KindHospital)
	c.syncAll(t)

	rec := n1.putRecord(n1.token(hospA, ""), patient, "labs", "application/fhir+json", json.RawMessage(labFHIR))
	path := "/v1/records/" + rec.ID + "?purpose=TREAT"
	ctok := n1.token(hospC, "")
	ptok := n2.patientToken(patient)

	get := func() (int, error) {
		req, err := http.NewRequestWithContext(t.Context(), "GET", n1.url+path, nil)
		if err != nil {
			return 0, err
		}
		req.Header.Set("Authorization", "Bearer "+ctok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		_, err = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, err
	}

	var permitsBefore, readsAfterAck atomic.Int64
	for round := range rounds {
		status, body := n2.do("POST", "/v1/consents", ptok, map[string]any{
			"grantee": map[string]string{"org": "hosp-c"}, "categories": []string{"labs"}, "purposes": []string{"TREAT"},
		})
		if status != http.StatusCreated {
			t.Fatalf("round %d: grant at node 2: %d %s", round, status, body)
		}
		var gr struct {
			Consent struct {
				ID string `json:"id"`
			} `json:"consent"`
		}
		if err := json.Unmarshal(body, &gr); err != nil || gr.Consent.ID == "" {
			t.Fatalf("round %d: grant response %s: %v", round, body, err)
		}
		// The grant holds at node 1 (a grant is not waited for: it is
		// safe to learn of it late, but node 1 decides at its head).
		permitted := false
		for range maxAttempts {
			st, err := get()
			if err != nil {
				t.Fatal(err)
			}
			if st == http.StatusOK {
				permitted = true
				break
			}
		}
		if !permitted {
			t.Fatalf("round %d: the grant made at node 2 never held at node 1", round)
		}

		var (
			acked   atomic.Bool
			wg      sync.WaitGroup
			started sync.WaitGroup
			errs    = make(chan error, readers*(readsAfter+maxAttempts))
		)
		started.Add(readers)
		for r := range readers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				first, after := true, 0
				for after < readsAfter {
					afterAck := acked.Load() // read before the request starts
					st, err := get()
					if first {
						started.Done()
						first = false
					}
					if err != nil {
						errs <- err
						return
					}
					switch {
					case afterAck && st == http.StatusOK:
						errs <- fmt.Errorf("round %d reader %d: a read started after the revocation was acknowledged was permitted", round, r)
					case st == http.StatusOK:
						permitsBefore.Add(1)
					case st != http.StatusNotFound:
						errs <- fmt.Errorf("round %d reader %d: status %d", round, r, st)
					}
					if afterAck {
						after++
						readsAfterAck.Add(1)
					}
				}
			}()
		}
		started.Wait() // every reader is reading when the revocation is made
		if status, body := n2.do("POST", "/v1/consents/"+gr.Consent.ID+"/revoke", ptok, nil); status != http.StatusOK {
			t.Fatalf("round %d: revoke at node 2: %d %s", round, status, body)
		}
		acked.Store(true)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if t.Failed() {
			return
		}
	}
	if permitsBefore.Load() == 0 {
		t.Error("no concurrent read was permitted before any revocation: the test did not exercise the race")
	}
	if got, want := readsAfterAck.Load(), int64(rounds*readers*readsAfter); got != want {
		t.Errorf("%d reads after the acknowledgements, want %d", got, want)
	}
}
