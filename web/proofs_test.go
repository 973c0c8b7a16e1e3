package web

import (
	"strings"
	"testing"

	"github.com/nicksnyder/go-i18n/v2/i18n"

	"github.com/healthgw/healthgw/circuits"
	"github.com/healthgw/healthgw/circuits/credential"
)

func translator(t *testing.T, lang string) text {
	t.Helper()
	b, err := newBundle()
	if err != nil {
		t.Fatal(err)
	}
	return text{loc: i18n.NewLocalizer(b, lang), lang: lang}
}

func testChallenge(t *testing.T, s circuits.Statement, date string, m map[string]string) circuits.Challenge {
	t.Helper()
	p, err := circuits.ParseParams(s, m)
	if err != nil {
		t.Fatal(err)
	}
	d, err := credential.ParseDay(date)
	if err != nil {
		t.Fatal(err)
	}
	return circuits.Challenge{ID: "00112233", Statement: s, Params: p, Nonce: []byte("n"), Scope: "ins-v", Verifier: "ins-v", Date: d}
}

// TestClaim: what a request asks, in words: an age cutoff exactly N years
// before the request's date (credential.AgeCutoff) reads as "at least N
// years old", anything else as the date itself.
func TestClaim(t *testing.T) {
	en, zh := translator(t, "en"), translator(t, "zh-CN")
	for _, tt := range []struct {
		name string
		t    text
		ch   circuits.Challenge
		want string
	}{
		{"over 18", en, testChallenge(t, circuits.Age, "2026-03-01", map[string]string{"attribute": "birth_date", "cutoff": "2008-03-01"}), "you are at least 18 years old"},
		{"over 18 on 28 February", en, testChallenge(t, circuits.Age, "2027-02-28", map[string]string{"attribute": "birth_date", "cutoff": "2009-02-28"}), "you are at least 18 years old"},
		{"over 65", en, testChallenge(t, circuits.Age, "2026-12-01", map[string]string{"attribute": "birth_date", "cutoff": "1961-12-01"}), "you are at least 65 years old"},
		{"a cutoff that is no birthday", en, testChallenge(t, circuits.Age, "2026-03-01", map[string]string{"attribute": "birth_date", "cutoff": "2008-02-27"}), "your date of birth is on or before 27 February 2008"},
		{"another date attribute", en, testChallenge(t, circuits.Age, "2026-03-01", map[string]string{"attribute": "last_visit", "cutoff": "2025-03-01"}), "your last visit is on or before 1 March 2025"},
		{"range", en, testChallenge(t, circuits.Range, "2026-03-01", map[string]string{"attribute": "hba1c", "lo": "6.5", "hi": "14"}), "your HbA1c is between 6.5 % and 14 %"},
		{"member", en, testChallenge(t, circuits.Member, "2026-03-01", map[string]string{"attribute": "diagnosis", "set": "E11.9"}), "your main diagnosis is E11.9 (ICD-10)"},
		{"member by root", en, testChallenge(t, circuits.Member, "2026-03-01", map[string]string{"attribute": "diagnosis", "root": strings.Repeat("0", 62) + "2a"}), "your main diagnosis is in a list the verifier chose"},
		{"over 18, in Chinese", zh, testChallenge(t, circuits.Age, "2026-03-01", map[string]string{"attribute": "birth_date", "cutoff": "2008-03-01"}), "您已年满 18 周岁"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got, _ := tt.t.claim(tt.ch); got != tt.want {
				t.Errorf("claim = %q, want %q", got, tt.want)
			}
		})
	}
	ch := testChallenge(t, circuits.Member, "2026-03-01", map[string]string{"attribute": "diagnosis", "set": "E11.9,E10.9"})
	if got, _ := en.claim(ch); !strings.Contains(got, "E11.9 (ICD-10)") || !strings.Contains(got, " or ") {
		t.Errorf("member of two: %q", got)
	}
}

// TestProveCommand: every flag the command needs, file names without
// anything a shell would read; an uploaded file name that needs quoting is
// not used.
func TestProveCommand(t *testing.T) {
	ch := testChallenge(t, circuits.Age, "2026-03-01", map[string]string{"attribute": "birth_date", "cutoff": "2008-03-01"})
	got := proveCommand(ch, "my-credential.json")
	want := "healthgw zk prove \\\n  --challenge healthgw-challenge-00112233.json \\\n  --verifier ins-v \\\n  --gateway-key healthgw-jwks.json \\\n" +
		"  --proving-key healthgw-age.pk \\\n  --credential my-credential.json \\\n  --secret secret.json \\\n  --out proof.json"
	if got != want {
		t.Errorf("command:\n%s\nwant:\n%s", got, want)
	}
	for name, ok := range map[string]bool{
		"my-credential.json": true, "cred_2.json": true, "a b.json": false, "$(rm -rf).json": false, "-rf": false, "x;y": false, "": false, "über.json": false,
	} {
		if safeFileName(name) != ok {
			t.Errorf("safeFileName(%q) = %v, want %v", name, !ok, ok)
		}
	}
}
