package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestExpiredTokenChallenge: an expired token is refused with the RFC 6750
// challenge invalid_token and an error_description saying it expired; any
// other bad token gets invalid_token without that description.
func TestExpiredTokenChallenge(t *testing.T) {
	g := newTestGateway(t)
	expired, err := g.devIdP.Mint("pat-1", g.url, time.Now().Add(-2*time.Hour), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	valid := g.patientToken("pat-1")
	for _, tc := range []struct {
		name, token, challenge, message string
	}{
		{"expired", expired, `Bearer realm="healthgw", error="invalid_token", error_description="The access token expired"`, "expired"},
		{"tampered", valid[:len(valid)-4] + "AAAA", `Bearer realm="healthgw", error="invalid_token"`, "Missing or invalid credentials."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), "GET", g.url+"/v1/consents", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+tc.token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", resp.StatusCode)
			}
			if got := resp.Header.Get("WWW-Authenticate"); got != tc.challenge {
				t.Errorf("WWW-Authenticate %q, want %q", got, tc.challenge)
			}
			var body struct{ Error, Message string }
			if err := decodeJSON(resp, &body); err != nil {
				t.Fatal(err)
			}
			if body.Error != "unauthorized" || !strings.Contains(body.Message, tc.message) {
				t.Errorf("body %+v, want error unauthorized and a message with %q", body, tc.message)
			}
		})
	}
	if status, _ := g.do("GET", "/v1/consents", valid, nil); status != http.StatusOK {
		t.Errorf("a valid token: status %d, want 200", status)
	}
}

func decodeJSON(resp *http.Response, v any) error {
	return json.NewDecoder(resp.Body).Decode(v)
}
