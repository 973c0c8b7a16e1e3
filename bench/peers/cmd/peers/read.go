package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/client"
)

// readClients is the number of concurrent clients of the read pair.
const readClients = 64

// labFHIR is the record the reads fetch (the gateway's own benchmark's).
const labFHIR = `{"resourceType":"Observation","status":"final","code":{"text":"HbA1c"},"valueQuantity":{"value":7.1,"unit":"%"}}`

// server is a process serving the read under test, with its CPU clock.
type server struct {
	cmd  *exec.Cmd
	url  string // the read's URL
	tok  func(context.Context) (string, error)
	stop func()
}

// readRate drives s with readClients clients for d and returns reads/s
// and the server's CPU (user + system) per read.
func readRate(ctx context.Context, s *server, d time.Duration) (rate float64, cpuPerRead time.Duration, err error) {
	tok, err := s.tok(ctx)
	if err != nil {
		return 0, 0, err
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConns: 2 * readClients, MaxIdleConnsPerHost: 2 * readClients}, Timeout: 30 * time.Second}
	defer hc.CloseIdleConnections()
	get := func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: status %d", s.url, resp.StatusCode)
		}
		return nil
	}
	// Warm the connections outside the measured window.
	for range readClients {
		if err := get(); err != nil {
			return 0, 0, err
		}
	}
	cpu0, err := procCPU(s.cmd.Process.Pid)
	if err != nil {
		return 0, 0, err
	}
	var n atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, readClients)
	start := time.Now()
	deadline := start.Add(d)
	for range readClients {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				if err := get(); err != nil {
					errc <- err
					return
				}
				n.Add(1)
			}
		})
	}
	wg.Wait()
	el := time.Since(start)
	cpu1, err := procCPU(s.cmd.Process.Pid)
	if err != nil {
		return 0, 0, err
	}
	close(errc)
	if err := <-errc; err != nil {
		return 0, 0, err
	}
	reads := n.Load()
	if reads == 0 {
		return 0, 0, errors.New("no read completed")
	}
	return float64(reads) / el.Seconds(), (cpu1 - cpu0) / time.Duration(reads), nil
}

// procCPU returns the user + system CPU time of process pid from
// /proc/pid/stat (clock ticks of 10 ms).
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseProcStatCPU(string(b))
}

// clockTick is USER_HZ on Linux.
const clockTick = 10 * time.Millisecond

func parseProcStatCPU(stat string) (time.Duration, error) {
	// The command name (field 2) is in parentheses and may hold spaces.
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("proc stat: no command field")
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, errors.New("proc stat: short")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("proc stat: %w", err)
	}
	return time.Duration(ut+st) * clockTick, nil
}

// freeAddr returns a loopback address with a free port.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// waitHTTP polls base until it answers (any status) or the timeout passes.
func waitHTTP(ctx context.Context, base string, cmd *exec.Cmd, exited <-chan struct{}, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("%s exited: %v", cmd.Path, cmd.ProcessState)
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer within %v", base, timeout)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// startProcess starts cmd with its output in logPath and returns a stop
// function that interrupts it and waits.
func startProcess(cmd *exec.Cmd, logPath string) (exited chan struct{}, stop func(), err error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, nil, err
	}
	exited = make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(exited) }()
	stop = func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	return exited, stop, nil
}

const (
	benchHospA = "bench-hosp-a"
	benchHospB = "bench-hosp-b"
)

// startGateway builds nothing: bin is a healthgw binary. It creates a
// data directory in dir with two hospitals (`org keygen --create`),
// serves it on loopback without rate limits or a background ZK setup,
// uploads a lab record of hospital A, lets its patient grant hospital B
// access for treatment, and returns the consent-gated read of hospital B.
func startGateway(ctx context.Context, bin, dir string) (*server, error) {
	data := filepath.Join(dir, "data")
	keys := filepath.Join(dir, "keys")
	for _, org := range []string{benchHospA, benchHospB} {
		out, err := exec.CommandContext(ctx, bin, "org", "keygen", "--id", org, "--kind", "hospital", "--out", keys, "--data", data, "--create").CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("healthgw org keygen %s: %w\n%s", org, err, out)
		}
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	base := "http://" + addr
	cmd := exec.CommandContext(ctx, bin, "serve", "--addr", addr, "--data", data, "--rate-limit=false", "--zk-dev-setup=false", "--dev-idp")
	cmd.Env = append(os.Environ(), "GIN_MODE=release")
	exited, stop, err := startProcess(cmd, filepath.Join(dir, "healthgw.log"))
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			stop()
		}
	}()
	if err := waitHTTP(ctx, base, cmd, exited, 2*time.Minute); err != nil {
		return nil, fmt.Errorf("%w (log: %s)", err, filepath.Join(dir, "healthgw.log"))
	}
	c := client.New(base, &http.Client{Timeout: 30 * time.Second})
	token := func(org string) func(context.Context) (string, error) {
		return func(ctx context.Context) (string, error) {
			key, err := auth.ReadPrivateKey(filepath.Join(keys, org+".jwk"))
			if err != nil {
				return "", err
			}
			endpoint := base + auth.TokenPath
			as, err := auth.NewClientAssertion(key, org, endpoint, time.Now(), 0)
			if err != nil {
				return "", err
			}
			tr, err := c.Exchange(ctx, endpoint, as, "")
			if err != nil {
				return "", fmt.Errorf("token for %s: %w", org, err)
			}
			return tr.AccessToken, nil
		}
	}
	atok, err := token(benchHospA)(ctx)
	if err != nil {
		return nil, err
	}
	var rec client.RecordCreated
	if err := c.Do(ctx, "POST", "/v1/records", atok, map[string]any{"patient": "bench-patient-1", "category": "labs",
		"content_type": "application/fhir+json", "content": json.RawMessage(labFHIR)}, http.StatusCreated, &rec); err != nil {
		return nil, fmt.Errorf("upload: %w", err)
	}
	idp, err := auth.LoadOrCreateDevIdP(auth.DevIdPKeyPath(data))
	if err != nil {
		return nil, err
	}
	ptok, err := idp.Mint("bench-patient-1", base, time.Now(), 10*time.Minute)
	if err != nil {
		return nil, err
	}
	if err := c.Do(ctx, "POST", "/v1/consents", ptok, map[string]any{"grantee": map[string]string{"org": benchHospB},
		"categories": []string{"labs"}, "purposes": []string{"TREAT"}}, http.StatusCreated, nil); err != nil {
		return nil, fmt.Errorf("consent: %w", err)
	}
	ok = true
	return &server{cmd: cmd, url: base + "/v1/records/" + rec.ID + "?purpose=TREAT", tok: token(benchHospB), stop: stop}, nil
}

// tokenAlg returns the "alg" of a compact JWS.
func tokenAlg(tok string) (string, error) {
	msg, err := jws.Parse([]byte(tok))
	if err != nil {
		return "", err
	}
	sigs := msg.Signatures()
	if len(sigs) == 0 {
		return "", errors.New("token without signature")
	}
	alg, ok := sigs[0].ProtectedHeaders().Algorithm()
	if !ok {
		return "", errors.New("token without alg")
	}
	return alg.String(), nil
}

// peerKey is the signing key of the bare gin server's tokens, of the same
// algorithm as the gateway's access tokens.
func peerKey(alg string) (priv, pub jwk.Key, sa jwa.SignatureAlgorithm, err error) {
	var raw any
	switch alg {
	case "EdDSA", "Ed25519":
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, nil, sa, err
		}
		raw, sa = k, jwa.EdDSA()
	case "ES256":
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, sa, err
		}
		raw, sa = k, jwa.ES256()
	default:
		return nil, nil, sa, fmt.Errorf("gateway tokens use %s, which the peer does not mirror", alg)
	}
	if priv, err = jwk.Import(raw); err != nil {
		return nil, nil, sa, err
	}
	if err := priv.Set(jwk.KeyIDKey, "peer-1"); err != nil {
		return nil, nil, sa, err
	}
	if pub, err = priv.PublicKey(); err != nil {
		return nil, nil, sa, err
	}
	return priv, pub, sa, nil
}

// startPeer starts this program's own bare gin + jwx server (the
// "peer-server" command) in mode "bare" or "audited", with a key of the
// algorithm alg, and returns its read.
func startPeer(ctx context.Context, self, dir, mode, alg string) (*server, error) {
	priv, pub, sa, err := peerKey(alg)
	if err != nil {
		return nil, err
	}
	pubJSON, err := json.Marshal(pub)
	if err != nil {
		return nil, err
	}
	pubPath := filepath.Join(dir, "peer-"+mode+".jwk")
	if err := os.WriteFile(pubPath, pubJSON, 0o644); err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	base := "http://" + addr
	cmd := exec.CommandContext(ctx, self, "peer-server", "-mode", mode, "-addr", addr, "-key", pubPath,
		"-db", filepath.Join(dir, "peer-"+mode+".db"), "-issuer", base, "-audience", base)
	exited, stop, err := startProcess(cmd, filepath.Join(dir, "peer-"+mode+".log"))
	if err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, base, cmd, exited, time.Minute); err != nil {
		stop()
		return nil, err
	}
	tok := func(context.Context) (string, error) {
		t, err := jwt.NewBuilder().Issuer(base).Audience([]string{base}).Subject(benchHospB).
			IssuedAt(time.Now()).Expiration(time.Now().Add(15*time.Minute)).Claim("scope", "records:read").Build()
		if err != nil {
			return "", err
		}
		b, err := jwt.Sign(t, jwt.WithKey(sa, priv))
		return string(b), err
	}
	return &server{cmd: cmd, url: base + "/v1/records/rec-1?purpose=TREAT", tok: tok, stop: stop}, nil
}
