package testscale

import (
	"testing"
	"time"
)

func TestTimeoutScales(t *testing.T) {
	s := Slowness()
	if s < 1 || s > maxSlowness {
		t.Fatalf("Slowness() = %v, want within [1, %d]", s, maxSlowness)
	}
	if got := Timeout(time.Second); got < time.Second {
		t.Errorf("Timeout(1s) = %v, want at least 1s", got)
	}
}

func TestEnvFactor(t *testing.T) {
	for in, want := range map[string]float64{"": 1, "3": 3, "0.5": 0.5, "0": 1, "-2": 1, "+Inf": 1, "NaN": 1, "x": 1} {
		if got := envFactor(in); got != want {
			t.Errorf("envFactor(%q) = %v, want %v", in, got, want)
		}
	}
}
