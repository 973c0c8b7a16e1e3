package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

const mib = 1 << 20

// recordsEncrypt runs the records package's own BenchmarkSealPooled/1MiB
// (the at-rest seal of a record's content as Vault.Put makes it, into a
// reused buffer: a fresh data key, AES-256-GCM
// over the content, the data key wrapped under the KEK; the function is
// unexported, so its benchmark is the way to call it) from the compiled
// test binary for d and returns its MB/s.
func recordsEncrypt(ctx context.Context, testBin string, d time.Duration) (float64, error) {
	out, err := exec.CommandContext(ctx, testBin, "-test.run", "^$", "-test.bench", "^BenchmarkSealPooled$/^1MiB$",
		"-test.benchtime", d.String(), "-test.count", "1").CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("records benchmark: %w\n%s", err, out)
	}
	return parseBenchMBs(out, "BenchmarkSealPooled/1MiB")
}

var mbsRe = regexp.MustCompile(`\s([0-9.]+) MB/s`)

// parseBenchMBs returns the MB/s of the benchmark line of name in go test
// output.
func parseBenchMBs(out []byte, name string) (float64, error) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		if m := mbsRe.FindStringSubmatch(line); m != nil {
			return strconv.ParseFloat(m[1], 64)
		}
	}
	return 0, fmt.Errorf("no MB/s line for %s in:\n%s", name, out)
}

// opensslSpeed runs `openssl speed -evp aes-256-gcm -bytes 1048576` for
// about d and returns its MB/s (openssl reports 1000s of bytes a second;
// -elapsed divides by wall-clock time like the Go side, not by user CPU
// time, which on a loaded machine would flatter openssl).
func opensslSpeed(ctx context.Context, d time.Duration) (float64, error) {
	secs := max(1, int(d.Round(time.Second)/time.Second))
	out, err := exec.CommandContext(ctx, "openssl", "speed", "-evp", "aes-256-gcm", "-bytes", strconv.Itoa(mib),
		"-seconds", strconv.Itoa(secs), "-elapsed").Output()
	if err != nil {
		return 0, fmt.Errorf("openssl speed: %w", err)
	}
	return parseOpenSSLSpeed(out)
}

// parseOpenSSLSpeed reads the figure of the result line of `openssl speed
// -evp aes-256-gcm -bytes N`, e.g. "AES-256-GCM   3690123.45k", in MB/s.
func parseOpenSSLSpeed(out []byte) (float64, error) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || !strings.EqualFold(f[0], "aes-256-gcm") {
			continue
		}
		v, ok := strings.CutSuffix(f[len(f)-1], "k")
		if !ok {
			continue
		}
		kbs, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return 0, fmt.Errorf("openssl speed: %q: %w", sc.Text(), err)
		}
		return kbs / 1000, nil
	}
	return 0, errors.New("openssl speed: no aes-256-gcm result line")
}

// goGCMInPlace encrypts 1 MiB in place with Go's AES-256-GCM (one key, a
// fresh nonce a call, no allocation) for d and returns MB/s: what the
// cipher itself costs in Go, and the baseline when openssl is absent.
func goGCMInPlace(d time.Duration) (float64, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return 0, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return 0, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return 0, err
	}
	buf := make([]byte, mib, mib+aead.Overhead())
	nonce := make([]byte, aead.NonceSize())
	n := 0
	start := time.Now()
	for time.Since(start) < d || n == 0 {
		nonce[0], nonce[1], nonce[2] = byte(n), byte(n>>8), byte(n>>16)
		buf = aead.Seal(buf[:0], nonce, buf[:mib], nil)
		n++
	}
	return float64(n) * mib / 1e6 / time.Since(start).Seconds(), nil
}

// recordsEncryptCPU runs records' BenchmarkSealPooled/1MiB for a fixed count
// (about d at 200 MB/s) and returns MB per CPU-second of the test process
// (user + system, its start included): on a loaded machine CPU time moves
// less than wall-clock time.
func recordsEncryptCPU(ctx context.Context, testBin string, d time.Duration) (float64, error) {
	n := max(10, int(d.Seconds()*200))
	cmd := exec.CommandContext(ctx, testBin, "-test.run", "^$", "-test.bench", "^BenchmarkSealPooled$/^1MiB$",
		"-test.benchtime", strconv.Itoa(n)+"x", "-test.count", "1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("records benchmark: %w\n%s", err, out)
	}
	if _, err := parseBenchMBs(out, "BenchmarkSealPooled/1MiB"); err != nil {
		return 0, err
	}
	cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	if cpu <= 0 {
		return 0, errors.New("records benchmark: no CPU time")
	}
	// The benchmark runs once with b.N = 1 before the n iterations.
	return float64(n+1) * mib / 1e6 / cpu.Seconds(), nil
}

// opensslSpeedCPU is opensslSpeed without -elapsed: openssl divides by
// its user CPU time.
func opensslSpeedCPU(ctx context.Context, d time.Duration) (float64, error) {
	secs := max(1, int(d.Round(time.Second)/time.Second))
	out, err := exec.CommandContext(ctx, "openssl", "speed", "-evp", "aes-256-gcm", "-bytes", strconv.Itoa(mib),
		"-seconds", strconv.Itoa(secs)).Output()
	if err != nil {
		return 0, fmt.Errorf("openssl speed: %w", err)
	}
	return parseOpenSSLSpeed(out)
}
