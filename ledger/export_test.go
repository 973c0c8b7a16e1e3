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

const ReleaseBatch = releaseBatch
