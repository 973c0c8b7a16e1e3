package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestDevSetupBanner: when serve runs the development setup it prints the
// DEVELOPMENT banner once the keys are ready (with the directory and the
// time it took), and none when the setup fails.
func TestDevSetupBanner(t *testing.T) {
	dir := t.TempDir()
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := func() time.Time { return clock }
	var out strings.Builder
	calls := 0
	err := devSetupWithBanner(t.Context(), dir, func(context.Context) error {
		calls++
		clock = clock.Add(55 * time.Second)
		return nil
	}, &out, now)
	if err != nil || calls != 1 {
		t.Fatalf("devSetupWithBanner = %v after %d setups, want nil after 1", err, calls)
	}
	for _, want := range []string{"DEVELOPMENT zero-knowledge keys are ready (setup took 55s)", dir, "--zk-dev-setup=false", "ceremony"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("banner %q does not contain %q", out.String(), want)
		}
	}

	out.Reset()
	boom := errors.New("setup interrupted")
	if err := devSetupWithBanner(t.Context(), dir, func(context.Context) error { return boom }, &out, now); !errors.Is(err, boom) {
		t.Errorf("failed setup: err %v, want %v", err, boom)
	}
	if out.Len() != 0 {
		t.Errorf("failed setup printed %q, want no banner", out.String())
	}
}
