package ledger

// Test helpers of this package's internal tests, for its external tests
// (package ledger_test), which can use ledgertest.MemLog.
var TestSigner = testSigner

const TestOrigin = testOrigin

var TestTime = testTime

const FollowBatch = followBatch

// SetUnsettledCap sets how many envelopes of outcome-unknown appends n
// keeps, forgetting those it kept.
func (n *Node) SetUnsettledCap(c int) { n.unsettled.init(c) }

// ForgetOpened empties n's cache of opened entries, so that the next read
// opens every entry again from the store (as after eviction).
func (n *Node) ForgetOpened() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cache.init(entryCacheSize)
	n.cache.next, n.cache.full = 0, false
}

const MinParallelOpens = minParallelOpens

const ReleaseBatch = releaseBatch

// RetryKeyed reports whether p carries a retry key (entryKey).
func (p *Prepared) RetryKeyed() bool { return p.keyed }

// PreparedStatement is the statement p's append signs, seals and caches.
func (p *Prepared) PreparedStatement() Statement { return p.st }
