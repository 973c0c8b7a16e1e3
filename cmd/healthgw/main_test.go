package main

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"
)

func TestVersionFlag(t *testing.T) {
	for _, arg := range []string{"--version", "-version", "version"} {
		var out bytes.Buffer
		if err := run(t.Context(), []string{arg}, func(string) string { return "" }, &out, &bytes.Buffer{}); err != nil {
			t.Fatalf("%s: %v", arg, err)
		}
		if got := out.String(); got != "healthgw "+version+"\n" {
			t.Errorf("%s printed %q", arg, got)
		}
	}
}

// TestExitCodes: help asked for is success; a usage error or a failure is
// not; an exitError keeps its code.
func TestExitCodes(t *testing.T) {
	var stderr bytes.Buffer
	// A leaf command's -h: the flag package prints usage and returns ErrHelp.
	err := run(t.Context(), []string{"org", "list", "-h"}, func(string) string { return "" }, &bytes.Buffer{}, &stderr)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("org list -h: %v, want flag.ErrHelp", err)
	}
	if !strings.Contains(stderr.String(), "-data") {
		t.Errorf("org list -h printed no usage: %q", stderr.String())
	}
	tests := []struct {
		name    string
		err     error
		want    int
		wantErr bool
	}{
		{"success", nil, 0, false},
		{"help", flag.ErrHelp, 0, false},
		{"usage", errUsage, 1, false},
		{"failure", errors.New("boom"), 1, true},
		{"exit code", exitError{code: 2, err: errors.New("verification failed")}, 2, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w bytes.Buffer
			if got := exitCode(tt.err, &w); got != tt.want {
				t.Errorf("exitCode = %d, want %d", got, tt.want)
			}
			if (w.Len() > 0) != tt.wantErr {
				t.Errorf("stderr %q", w.String())
			}
		})
	}
}
