package comet

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/transparency-dev/formats/log"
)

// checkpointExtension starts the extension line that names the chain and
// height a checkpoint describes.
const checkpointExtension = "cometbft"

// ErrNoHeight: a checkpoint carries no (or a malformed) cometbft
// extension line.
var ErrNoHeight = errors.New("comet: checkpoint has no cometbft height line")

// MarshalCheckpoint returns the body of a checkpoint of the log after the
// committed block st.Height: the C2SP tlog-checkpoint lines (origin, size,
// base64 root) followed by one extension line
//
//	cometbft <chain-id> <height>
//
// The header of block height+1 on that chain carries the same root as its
// app_hash, and the commit for that block, signed by more than two thirds
// of the validators, attests it.
func MarshalCheckpoint(origin, chainID string, st State) []byte {
	body := log.Checkpoint{Origin: origin, Size: st.Size, Hash: st.Root[:]}.Marshal()
	return fmt.Appendf(body, "%s %s %d\n", checkpointExtension, chainID, st.Height)
}

// ParseCheckpointHeight reads the chain ID and height from a checkpoint's
// extension lines, as returned by log.ParseCheckpoint.
func ParseCheckpointHeight(rest []byte) (chainID string, height int64, err error) {
	for line := range strings.SplitSeq(strings.TrimSuffix(string(rest), "\n"), "\n") {
		f := strings.Split(line, " ")
		if len(f) != 3 || f[0] != checkpointExtension {
			continue
		}
		h, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil || h < 0 || f[1] == "" || strconv.FormatInt(h, 10) != f[2] {
			return "", 0, fmt.Errorf("%w: %q", ErrNoHeight, line)
		}
		return f[1], h, nil
	}
	return "", 0, ErrNoHeight
}
