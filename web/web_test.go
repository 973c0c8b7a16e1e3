package web

import (
	"io/fs"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nicksnyder/go-i18n/v2/i18n"
	"github.com/pelletier/go-toml/v2"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/consent"
	"github.com/healthgw/healthgw/records"
)

func catalogue(t *testing.T, name string) map[string]string {
	t.Helper()
	raw, err := localeFS.ReadFile("locales/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]string
	if err := toml.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return m
}

// TestCatalogues: both languages have the same messages, and every
// message a template or the Go code asks for exists.
func TestCatalogues(t *testing.T) {
	en, zh := catalogue(t, "en.toml"), catalogue(t, "zh-CN.toml")
	var enKeys, zhKeys []string
	for k := range en {
		enKeys = append(enKeys, k)
	}
	for k := range zh {
		zhKeys = append(zhKeys, k)
	}
	slices.Sort(enKeys)
	slices.Sort(zhKeys)
	if diff := cmp.Diff(enKeys, zhKeys); diff != "" {
		t.Errorf("catalogues differ (-en +zh-CN):\n%s", diff)
	}
	for k, v := range zh {
		if v == "" || (v == en[k] && !slices.Contains([]string{"ListSep", "ChartRange", "ExportCSV"}, k) && !strings.HasPrefix(k, "Layout")) {
			if v == "" || regexp.MustCompile(`[a-z]{4,}`).MatchString(strings.ReplaceAll(v, "{{", "")) {
				t.Errorf("zh-CN %s is not translated: %q", k, v)
			}
		}
	}

	want := map[string]bool{}
	tmplRe := regexp.MustCompile(`\.T "([A-Za-z0-9_]+)"`)
	_ = fs.WalkDir(templateFS, "templates", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := templateFS.ReadFile(p)
		for _, m := range tmplRe.FindAllStringSubmatch(string(b), -1) {
			want[m[1]] = true
		}
		return nil
	})
	goRe := regexp.MustCompile(`\bT\("([A-Za-z0-9_]+)"`)
	files, _ := filepath.Glob("*.go")
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range goRe.FindAllStringSubmatch(string(b), -1) {
			if !strings.HasSuffix(m[1], "_") { // prefixes of the families below
				want[m[1]] = true
			}
		}
	}
	for _, r := range errorPages {
		want[r.msg] = true
	}
	for _, c := range records.Categories() {
		want["Cat_"+msgKey(string(c))], want["CatInfo_"+msgKey(string(c))] = true, true
	}
	for _, p := range consent.Purposes {
		want["Purpose_"+string(p)], want["PurposeInfo_"+string(p)] = true, true
	}
	for _, r := range consent.Reasons {
		want["Reason_"+msgKey(string(r))] = true
	}
	for _, s := range []consent.Status{consent.StatusActive, consent.StatusPending, consent.StatusExpired, consent.StatusRevoked} {
		for _, p := range []string{"Status_", "Group_", "GroupEmpty_", "Sentence_", "SentenceDeny_"} {
			want[p+string(s)] = true
		}
	}
	for _, k := range auth.Kinds {
		want["GranteeKind_"+string(k)] = true
	}
	if len(want) < 100 {
		t.Fatalf("found only %d message IDs: the scan is broken", len(want))
	}
	for id := range want {
		if _, ok := en[id]; !ok {
			t.Errorf("message %s is used but not in en.toml", id)
		}
		if _, ok := zh[id]; !ok {
			t.Errorf("message %s is used but not in zh-CN.toml", id)
		}
	}
}

func texts(t *testing.T) (en, zh text) {
	t.Helper()
	b, err := newBundle()
	if err != nil {
		t.Fatal(err)
	}
	return text{loc: i18n.NewLocalizer(b, "en"), lang: "en"}, text{loc: i18n.NewLocalizer(b, "zh-CN"), lang: "zh-CN"}
}

func TestDescribe(t *testing.T) {
	en, zh := texts(t)
	names := orgNames{"hosp-b": "Hospital B"}
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	g := consent.Grant{
		ID: "cns_1", Grantee: consent.Grantee{Org: "hosp-b"}, Effect: consent.Permit, Categories: []string{"labs"},
		Purposes: []consent.Purpose{consent.PurposeTreatment}, NotBefore: now.Add(-time.Hour),
		NotAfter: time.Date(2027, 6, 2, 0, 0, 0, 0, time.UTC), GrantedAt: now.Add(-time.Hour),
	}
	for _, tc := range []struct {
		name string
		t    text
		g    func(consent.Grant) consent.Grant
		want string
	}{
		{"active", en, nil, "Hospital B may read your lab results for treatment until 1 June 2027."},
		{"active zh", zh, nil, "Hospital B可以为治疗读取您的化验结果，直至2027年6月1日。"},
		{"pending", en, func(g consent.Grant) consent.Grant { g.NotBefore = now.Add(48 * time.Hour); return g },
			"From 3 December 2026, Hospital B may read your lab results for treatment until 1 June 2027."},
		{"expired", en, func(g consent.Grant) consent.Grant { g.NotAfter = now.Add(-time.Minute); return g },
			"Hospital B could read your lab results for treatment until 1 December 2026. This permission has ended."},
		{"revoked", en, func(g consent.Grant) consent.Grant { g.Revoked, g.RevokedAt = true, now; return g },
			"You withdrew the permission for Hospital B to read your lab results for treatment on 1 December 2026."},
		{"lists", en, func(g consent.Grant) consent.Grant {
			g.Categories = []string{"labs", "medications", "mental-health"}
			g.Purposes = []consent.Purpose{consent.PurposeTreatment, consent.PurposeResearch}
			return g
		}, "Hospital B may read your lab results, medicines and mental health records for treatment or research until 1 June 2027."},
		{"lists zh", zh, func(g consent.Grant) consent.Grant {
			g.Categories = []string{"labs", "medications", "mental-health"}
			return g
		}, "Hospital B可以为治疗读取您的化验结果、用药和精神健康记录，直至2027年6月1日。"},
		{"everything, every hospital", en, func(g consent.Grant) consent.Grant {
			g.Grantee, g.Categories, g.Purposes = consent.Grantee{Kind: auth.KindHospital}, nil, nil
			return g
		}, "Every hospital may read your records of every kind for any purpose until 1 June 2027."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := g
			if tc.g != nil {
				in = tc.g(g)
			}
			if got := tc.t.describe(in, names, now).Sentence; got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
	if v := en.describe(consent.Grant{Categories: []string{"genomics"}, Effect: consent.Permit}, names, now); !v.Sensitive {
		t.Error("genomics not flagged sensitive")
	}
}

func TestPickLanguage(t *testing.T) {
	for _, tc := range []struct{ accept, cookie, query, want string }{
		{"", "", "", "en"},
		{"zh-CN,zh;q=0.9,en;q=0.8", "", "", "zh-CN"},
		{"zh", "", "", "zh-CN"},
		{"fr-FR", "", "", "en"},
		{"zh-CN", "en", "", "en"},
		{"en", "zh-CN", "", "zh-CN"},
		{"en", "", "zh-CN", "zh-CN"},
		{"en", "", "xx", "en"},
	} {
		r := httptest.NewRequest("GET", "/app/?lang="+tc.query, nil)
		r.Header.Set("Accept-Language", tc.accept)
		if tc.cookie != "" {
			r.Header.Set("Cookie", langCookie+"="+tc.cookie)
		}
		if got, _ := pickLanguage(r); got != tc.want {
			t.Errorf("%+v: got %s", tc, got)
		}
	}
}

func TestSessions(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	st := newSessionStore(30*time.Minute, 8*time.Hour, func() time.Time { return now })
	s := st.create(areaApp)
	st.setLogin(s.ID, &login{State: "x", Started: now})
	if _, ok := st.get(areaConsole, s.ID); ok {
		t.Error("an app session works in the console")
	}
	in := st.signIn(areaApp, s.ID, "pat-1", "")
	if in.ID == s.ID || in.CSRF == s.CSRF {
		t.Error("signing in kept the session ID or CSRF token")
	}
	if _, ok := st.get(areaApp, s.ID); ok {
		t.Error("the pre-sign-in session survived")
	}
	for i := 0; i < 15; i++ { // active: idle timer refreshed, until the absolute limit
		now = now.Add(25 * time.Minute)
		if _, ok := st.get(areaApp, in.ID); !ok {
			t.Fatalf("active session expired after %d refreshes", i)
		}
	}
	now = now.Add(2 * time.Hour) // past 8 h in all
	if _, ok := st.get(areaApp, in.ID); ok {
		t.Error("session outlived its maximum age")
	}
	idle := st.signIn(areaApp, "", "pat-2", "")
	now = now.Add(31 * time.Minute)
	if _, ok := st.get(areaApp, idle.ID); ok {
		t.Error("idle session did not expire")
	}
	pending := st.create(areaApp)
	st.setLogin(pending.ID, &login{Started: now})
	now = now.Add(loginTimeout + time.Second)
	if _, ok := st.get(areaApp, pending.ID); ok {
		t.Error("an abandoned sign-in did not expire")
	}
}

func TestPagesParse(t *testing.T) {
	p, err := parsePages()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"app_home.html", "consents.html", "grant.html", "consent.html", "revoke.html", "access.html",
		"console_home.html", "ledger.html", "audit.html", "breakglass.html", "hospitals.html", "error.html"} {
		if p[n] == nil {
			t.Errorf("page %s missing", n)
		}
	}
}

func TestCSVSafe(t *testing.T) {
	for in, want := range map[string]string{"hosp-b": "hosp-b", "=HYPERLINK(1)": "'=HYPERLINK(1)", "+1": "'+1", "-x": "'-x", "@a": "'@a", "": ""} {
		if got := csvSafe(in); got != want {
			t.Errorf("csvSafe(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzReadFilter: any query string gives a filter or an error, never a
// panic, and an accepted filter validates.
func FuzzReadFilter(f *testing.F) {
	for _, s := range []string{"", "org=hosp-b&decision=deny", "since=2026-01-01&until=2025-01-01", "page=-1", "break_glass=true&page=3", "since=x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		_, af, err := readFilter(q)
		if err == nil {
			if verr := af.Validate(); verr != nil {
				t.Errorf("accepted filter %+v does not validate: %v", af, verr)
			}
		}
	})
}
