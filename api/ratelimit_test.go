package api

import (
	"encoding/base64"
	"net/url"
	"strings"
	"testing"
)

func TestClientOrgOf(t *testing.T) {
	jwt := func(payload string) string {
		return "eyJhbGciOiJFUzI1NiJ9." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + ".c2ln"
	}
	form := func(kv ...string) string {
		v := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v.Encode()
	}
	tests := []struct {
		name, form, want string
	}{
		{"assertion iss", form("client_assertion", jwt(`{"iss":"hosp-a","sub":"hosp-a"}`)), "hosp-a"},
		{"client_id wins", form("client_id", "hosp-b", "client_assertion", jwt(`{"iss":"hosp-a"}`)), "hosp-b"},
		{"bad client_id", form("client_id", "a b"), ""},
		{"iss not a string", form("client_assertion", jwt(`{"iss":5}`)), ""},
		{"iss too long", form("client_assertion", jwt(`{"iss":"`+strings.Repeat("a", 65)+`"}`)), ""},
		{"two parts", form("client_assertion", "a.b"), ""},
		{"bad base64", form("client_assertion", "a.!!.c"), ""},
		{"no assertion", form("grant_type", "client_credentials"), ""},
		{"not a form", "%zz", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := clientOrgOf(tt.form); got != tt.want {
				t.Errorf("clientOrgOf = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSourceAddress(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:5000":                 "127.0.0.1",
		"[::ffff:10.0.0.1]:1":            "10.0.0.1",
		"[2001:db8:1:2:3:4:5:6]:443":     "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff:4:5:6]:8080": "2001:db8:1:2::/64",
		"garbage":                        "garbage",
	} {
		if got := sourceAddress(in); got != want {
			t.Errorf("sourceAddress(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzClientOrgOf(f *testing.F) {
	f.Add("client_assertion=eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJob3NwLWEifQ.c2ln")
	f.Add("client_id=x&client_assertion=a.b.c")
	f.Add("%")
	f.Fuzz(func(t *testing.T, form string) {
		got := clientOrgOf(form)
		if got != "" && !orgIDPattern.MatchString(got) {
			t.Fatalf("clientOrgOf returned a key outside the pattern: %q", got)
		}
	})
}
