package ratelimit

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limit is a token bucket: Rate requests a second on average, Burst at
// once. The zero Limit is no limit.
type Limit struct {
	Rate  float64
	Burst int
}

// Unlimited reports whether l limits nothing.
func (l Limit) Unlimited() bool { return l.Rate == 0 && l.Burst == 0 }

// Validate rejects negative or half-set limits.
func (l Limit) Validate() error {
	switch {
	case l.Unlimited():
		return nil
	case l.Rate <= 0 || math.IsInf(l.Rate, 0) || math.IsNaN(l.Rate):
		return fmt.Errorf("rate must be a positive number of requests a second, not %v", l.Rate)
	case l.Burst < 1:
		return fmt.Errorf("burst must be at least 1, not %d", l.Burst)
	}
	return nil
}

// String formats l as Set reads it: "RATE:BURST", or "off".
func (l Limit) String() string {
	if l.Unlimited() {
		return "off"
	}
	return strconv.FormatFloat(l.Rate, 'g', -1, 64) + ":" + strconv.Itoa(l.Burst)
}

// Set parses "RATE:BURST" (requests a second, requests at once), e.g.
// "5:50" or "0.5:10"; "off" or "0" for no limit. It makes *Limit a
// flag.Value.
func (l *Limit) Set(s string) error {
	s = strings.TrimSpace(s)
	if s == "off" || s == "0" {
		*l = Limit{}
		return nil
	}
	r, b, ok := strings.Cut(s, ":")
	if !ok {
		return fmt.Errorf("want RATE:BURST (requests a second:requests at once) or off, not %q", s)
	}
	rv, err := strconv.ParseFloat(strings.TrimSpace(r), 64)
	if err != nil {
		return fmt.Errorf("rate %q: not a number", r)
	}
	bv, err := strconv.Atoi(strings.TrimSpace(b))
	if err != nil {
		return fmt.Errorf("burst %q: not a whole number", b)
	}
	nl := Limit{Rate: rv, Burst: bv}
	if err := nl.Validate(); err != nil {
		return err
	}
	*l = nl
	return nil
}

// Buckets is a token bucket per key, for at most maxKeys keys.
type Buckets struct {
	limit Limit
	mu    sync.Mutex
	t     *table[*rate.Limiter]
}

// NewBuckets returns a bucket per key limited by l, keeping at most maxKeys
// keys (DefaultMaxKeys when maxKeys <= 0).
func NewBuckets(l Limit, maxKeys int) *Buckets {
	// A bucket idle for burst/rate seconds is full again: dropping it is
	// the same as keeping it.
	idle := time.Duration(0)
	if !l.Unlimited() {
		idle = time.Duration(float64(l.Burst) / l.Rate * float64(time.Second))
	}
	return &Buckets{limit: l, t: newTable[*rate.Limiter](maxKeys, idle)}
}

// Allow takes a token for key at now. When there is none it returns false
// and how long until there is one.
func (b *Buckets) Allow(key string, now time.Time) (bool, time.Duration) {
	if b == nil || b.limit.Unlimited() {
		return true, 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	lim := b.t.get(key, now, func() *rate.Limiter {
		return rate.NewLimiter(rate.Limit(b.limit.Rate), b.limit.Burst)
	})
	if lim.AllowN(now, 1) {
		return true, 0
	}
	missing := 1 - lim.TokensAt(now)
	wait := time.Duration(missing / b.limit.Rate * float64(time.Second))
	if wait < time.Millisecond {
		wait = time.Millisecond
	}
	return false, wait
}

// Len is the number of keys held.
func (b *Buckets) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.t.len()
}

// Backoff refuses a key for an exponentially growing time after
// Threshold consecutive failures: Base after the Threshold-th failure,
// doubling with each further one, at most Max. A success forgets the key.
type Backoff struct {
	Threshold int
	Base, Max time.Duration
}

// Validate rejects unusable settings. The zero Backoff is off.
func (b Backoff) Validate() error {
	if b == (Backoff{}) {
		return nil
	}
	switch {
	case b.Threshold < 1:
		return fmt.Errorf("failure threshold must be at least 1, not %d", b.Threshold)
	case b.Base <= 0:
		return fmt.Errorf("back-off base must be positive, not %s", b.Base)
	case b.Max < b.Base:
		return fmt.Errorf("maximum back-off %s is below the base %s", b.Max, b.Base)
	}
	return nil
}

type failures struct {
	n     int
	until time.Time
}

// backoffs is a Backoff per key.
type backoffs struct {
	cfg Backoff
	mu  sync.Mutex
	t   *table[*failures]
}

func newBackoffs(cfg Backoff, maxKeys int) *backoffs {
	// A key idle for longer than the longest back-off carries no block;
	// dropping it only forgets a short run of failures.
	return &backoffs{cfg: cfg, t: newTable[*failures](maxKeys, 2*cfg.Max)}
}

// blocked reports how long key is still refused at now (0: not refused).
func (b *backoffs) blocked(key string, now time.Time) time.Duration {
	if b.cfg == (Backoff{}) {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	f, ok := b.t.peek(key)
	if !ok || !now.Before(f.until) {
		return 0
	}
	return f.until.Sub(now)
}

// failure counts a failure of key at now and returns the refusal it earns
// (0 while under the threshold).
func (b *backoffs) failure(key string, now time.Time) time.Duration {
	if b.cfg == (Backoff{}) {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	f := b.t.get(key, now, func() *failures { return &failures{} })
	f.n++
	if f.n < b.cfg.Threshold {
		return 0
	}
	d := b.cfg.Base
	for i := b.cfg.Threshold; i < f.n && d < b.cfg.Max; i++ {
		d *= 2
	}
	d = min(d, b.cfg.Max)
	f.until = now.Add(d)
	return d
}

func (b *backoffs) success(key string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.t.remove(key)
}

// LogLimiter lets one log line per key through per interval and counts
// the ones it holds back, so a flood of identical refusals writes one line
// an interval, not one a request.
type LogLimiter struct {
	interval time.Duration
	mu       sync.Mutex
	t        *table[*logState]
}

type logState struct {
	next       time.Time
	suppressed int
}

// NewLogLimiter allows one line per key per interval (DefaultLogInterval
// when interval <= 0), for at most maxKeys keys.
func NewLogLimiter(interval time.Duration, maxKeys int) *LogLimiter {
	if interval <= 0 {
		interval = DefaultLogInterval
	}
	return &LogLimiter{interval: interval, t: newTable[*logState](maxKeys, interval)}
}

// Allow reports whether a line for key may be written at now and, if so,
// how many were held back since the last one.
func (l *LogLimiter) Allow(key string, now time.Time) (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.t.get(key, now, func() *logState { return &logState{} })
	if now.Before(s.next) {
		s.suppressed++
		return false, 0
	}
	n := s.suppressed
	s.next, s.suppressed = now.Add(l.interval), 0
	return true, n
}

// ErrInvalidConfig marks a configuration Validate refuses.
var ErrInvalidConfig = errors.New("invalid rate limit")
