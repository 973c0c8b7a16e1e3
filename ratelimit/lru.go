package ratelimit

import (
	"container/list"
	"time"
)

// table is a bounded map from keys to values, least recently used first
// out. It is not safe for concurrent use; its owner locks.
type table[V any] struct {
	max   int
	idle  time.Duration // entries unused this long are dropped first
	order *list.List    // front: most recently used
	items map[string]*list.Element
}

type slot[V any] struct {
	key  string
	last time.Time
	val  V
}

func newTable[V any](max int, idle time.Duration) *table[V] {
	if max <= 0 {
		max = DefaultMaxKeys
	}
	return &table[V]{max: max, idle: idle, order: list.New(), items: map[string]*list.Element{}}
}

// get returns the value for key, creating it with mk when absent, and
// marks it used at now.
func (t *table[V]) get(key string, now time.Time, mk func() V) V {
	if el, ok := t.items[key]; ok {
		s := el.Value.(*slot[V])
		s.last = now
		t.order.MoveToFront(el)
		return s.val
	}
	t.evict(now)
	s := &slot[V]{key: key, last: now, val: mk()}
	t.items[key] = t.order.PushFront(s)
	return s.val
}

// peek returns the value for key without creating or touching it.
func (t *table[V]) peek(key string) (V, bool) {
	if el, ok := t.items[key]; ok {
		return el.Value.(*slot[V]).val, true
	}
	var zero V
	return zero, false
}

func (t *table[V]) remove(key string) {
	if el, ok := t.items[key]; ok {
		t.order.Remove(el)
		delete(t.items, key)
	}
}

// evict drops idle entries from the back, then the least recently used
// ones until there is room for one more.
func (t *table[V]) evict(now time.Time) {
	for el := t.order.Back(); el != nil; el = t.order.Back() {
		s := el.Value.(*slot[V])
		if len(t.items) < t.max && (t.idle <= 0 || now.Sub(s.last) < t.idle) {
			return
		}
		t.order.Remove(el)
		delete(t.items, s.key)
	}
}

func (t *table[V]) len() int { return len(t.items) }
