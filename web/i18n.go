package web

import (
	"embed"
	"fmt"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"github.com/nicksnyder/go-i18n/v2/i18n"
	"github.com/pelletier/go-toml/v2"
	"golang.org/x/text/language"
)

//go:embed locales/*.toml
var localeFS embed.FS

// Languages the app speaks, in preference order; the first is the default.
var languages = []language.Tag{language.English, language.MustParse("zh-CN")}

var matcher = language.NewMatcher(languages)

// langCookie remembers the visible language switch.
const langCookie = "healthgw_lang"

// newBundle loads every catalogue.
func newBundle() (*i18n.Bundle, error) {
	b := i18n.NewBundle(language.English)
	b.RegisterUnmarshalFunc("toml", toml.Unmarshal)
	files, err := fs.Glob(localeFS, "locales/*.toml")
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		raw, err := localeFS.ReadFile(f)
		if err != nil {
			return nil, err
		}
		if _, err := b.ParseMessageFileBytes(raw, f); err != nil {
			return nil, fmt.Errorf("web: catalogue %s: %w", f, err)
		}
	}
	return b, nil
}

// pickLanguage chooses from ?lang=, the switch's cookie, then
// Accept-Language. It returns the tag's string ("en" or "zh-CN") and
// whether it came from ?lang= (then the cookie is to be set).
func pickLanguage(r *http.Request) (string, bool) {
	if v := r.URL.Query().Get("lang"); v != "" {
		if t, ok := supported(v); ok {
			return t, true
		}
	}
	if c, err := r.Cookie(langCookie); err == nil {
		if t, ok := supported(c.Value); ok {
			return t, false
		}
	}
	_, i := language.MatchStrings(matcher, r.Header.Get("Accept-Language"))
	return languages[i].String(), false
}

func supported(v string) (string, bool) {
	for _, t := range languages {
		if strings.EqualFold(t.String(), v) {
			return t.String(), true
		}
	}
	return "", false
}

// text is a request's translator.
type text struct {
	loc  *i18n.Localizer
	lang string
}

// T translates message id; args are key/value pairs for its template.
// A missing message is a bug caught by TestCatalogues; at run time the ID
// is shown rather than nothing.
func (t text) T(id string, args ...any) string {
	var data map[string]any
	if len(args) > 0 {
		data = make(map[string]any, len(args)/2)
		for i := 0; i+1 < len(args); i += 2 {
			data[fmt.Sprint(args[i])] = args[i+1]
		}
	}
	s, err := t.loc.Localize(&i18n.LocalizeConfig{MessageID: id, TemplateData: data})
	if err != nil {
		return id
	}
	return s
}

// Date formats a day in the language's layout.
func (t text) Date(v time.Time) string {
	if v.IsZero() {
		return ""
	}
	return v.UTC().Format(t.T("LayoutDate"))
}

// DateTime formats an instant (UTC) in the language's layout.
func (t text) DateTime(v time.Time) string {
	if v.IsZero() {
		return ""
	}
	return v.UTC().Format(t.T("LayoutDateTime"))
}

// list joins items with the language's separators ("a, b and c").
func (t text) list(items []string, conj string) string {
	switch len(items) {
	case 0:
		return ""
	case 1:
		return items[0]
	}
	return strings.Join(items[:len(items)-1], t.T("ListSep")) + t.T(conj) + items[len(items)-1]
}

// Lang is the page's language tag ("en", "zh-CN").
func (t text) Lang() string { return t.lang }
