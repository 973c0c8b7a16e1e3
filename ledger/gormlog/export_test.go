package gormlog

import (
	"context"

	"github.com/healthgw/healthgw/ledger"
)

// BulkLoad appends leaves with their envelopes in transactions of batch
// entries, bypassing the queue and the envelope checks. For building
// large benchmark logs, and logs a test then edits, only.
func (l *Log) BulkLoad(ctx context.Context, leaves [][]byte, envs []ledger.Envelope, batch int) error {
	for lo := 0; lo < len(leaves); lo += batch {
		hi := min(lo+batch, len(leaves))
		first, fr, err := l.writeBatch(ctx, leaves[lo:hi], envs[lo:hi])
		if err != nil {
			return err
		}
		l.frontier = fr
		l.noteSize(first + uint64(hi-lo))
		l.vouch(first, first+uint64(hi-lo))
	}
	return nil
}
