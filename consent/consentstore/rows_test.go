package consentstore

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// FuzzListRoundTrip checks that decodeList's fast path reads back exactly
// what encodeList stored, for any strings.
func FuzzListRoundTrip(f *testing.F) {
	for _, seed := range []string{"lab", "", `a","b`, `x\y`, "é<&>", "\x00\xff", `"]`, `["`} {
		f.Add(seed, "TREAT", "")
	}
	f.Fuzz(func(t *testing.T, a, b, c string) {
		for _, in := range [][]string{{a}, {a, b}, {a, b, c}} {
			got, err := decodeList[string](encodeList(in))
			if err != nil {
				t.Fatalf("decodeList(encodeList(%q)): %v", in, err)
			}
			// The reference is encoding/json (which replaces invalid UTF-8
			// with U+FFFD).
			var want []string
			if err := json.Unmarshal([]byte(*encodeList(in)), &want); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("round trip of %q (-want +got):\n%s", in, diff)
			}
		}
	})
}

func TestListEmpty(t *testing.T) {
	if s := encodeList[string](nil); s != nil {
		t.Errorf("encodeList(nil) = %q, want NULL", *s)
	}
	if s := encodeList([]string{}); s != nil {
		t.Errorf("encodeList([]) = %q, want NULL", *s)
	}
	empty := "[]"
	if got, err := decodeList[string](&empty); err != nil || got != nil {
		t.Errorf("decodeList([]) = %q, %v, want nil", got, err)
	}
	bad := `["a"`
	if _, err := decodeList[string](&bad); err == nil {
		t.Errorf("decodeList(%q) succeeded", bad)
	}
}

func TestNanos(t *testing.T) {
	tests := []struct {
		name string
		in   time.Time
		want *int64
	}{
		{"zero is NULL", time.Time{}, nil},
		{"epoch", time.Unix(0, 0), ptr(int64(0))},
		{"nanoseconds kept", time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("X", 3600)), ptr(time.Date(2026, 1, 2, 2, 4, 5, 6, time.UTC).UnixNano())},
		{"far future clamped", time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), ptr(int64(math.MaxInt64))},
		{"far past clamped", time.Date(1, 1, 2, 0, 0, 0, 0, time.UTC), ptr(int64(math.MinInt64))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := toNanos(tt.in)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("toNanos (-want +got):\n%s", diff)
			}
			if back := fromNanos(got); got != nil && *got != math.MaxInt64 && *got != math.MinInt64 && !back.Equal(tt.in) {
				t.Errorf("fromNanos(toNanos(%v)) = %v", tt.in, back)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
