package gormlog

import "context"

// BulkLoad appends pre-encoded entries in transactions of batch entries,
// bypassing the queue. For building large benchmark logs only.
func (l *Log) BulkLoad(ctx context.Context, datas [][]byte, batch int) error {
	for lo := 0; lo < len(datas); lo += batch {
		hi := min(lo+batch, len(datas))
		first, fr, err := l.writeBatch(ctx, datas[lo:hi])
		if err != nil {
			return err
		}
		l.frontier = fr
		l.noteSize(first + uint64(hi-lo))
	}
	return nil
}
