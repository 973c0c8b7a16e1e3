package member

import (
	"bytes"
	"errors"
	"testing"

	"github.com/consensys/gnark-crypto/accumulator/merkletree"
	"github.com/google/go-cmp/cmp"

	"github.com/healthgw/healthgw/circuits/credential"
)

// fullTree builds the depth-d tree over values padded to 2^d leaves the
// plain way, with gnark-crypto's merkletree and one Push per leaf.
func fullTree(t *testing.T, values []uint64, d int, index int) (root []byte, proof [][]byte) {
	t.Helper()
	tr := merkletree.New(&nodeHash{})
	if index >= 0 {
		if err := tr.SetIndex(uint64(index)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 1<<d; i++ {
		if i < len(values) {
			tr.Push(leafBytes(values[i]))
		} else {
			tr.Push(paddingLeaf())
		}
	}
	if index < 0 {
		return tr.Root(), nil
	}
	root, proof, _, _ = tr.Prove()
	return root, proof
}

func TestSetMatchesFullTree(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values []uint64
		depth  int
	}{
		{"one value", []uint64{7}, 4},
		{"three values", []uint64{9, 3, 5}, 4},
		{"five values", []uint64{1, 2, 3, 4, 5}, 5},
		{"full", []uint64{0, 1, 2, 3, 4, 5, 6, 7}, 3},
		{"seven of eight", []uint64{10, 20, 30, 40, 50, 60, 70}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := newSet(tc.values, tc.depth)
			if err != nil {
				t.Fatal(err)
			}
			sorted := s.Values()
			wantRoot, _ := fullTree(t, sorted, tc.depth, -1)
			r := s.Root()
			gotRoot := r.Bytes()
			if !bytes.Equal(gotRoot[:], wantRoot) {
				t.Fatalf("root %x, want %x", gotRoot, wantRoot)
			}
			for i, v := range sorted {
				idx, path, err := s.prove(v)
				if err != nil {
					t.Fatal(err)
				}
				if idx != uint64(i) {
					t.Errorf("index of %d = %d, want %d", v, idx, i)
				}
				_, proof := fullTree(t, sorted, tc.depth, i)
				var got [][]byte
				for _, e := range path {
					b := e.Bytes()
					got = append(got, b[:])
				}
				if diff := cmp.Diff(proof[1:], got); diff != "" {
					t.Errorf("path of %d (-full tree +set):\n%s", v, diff)
				}
			}
		})
	}
}

func TestSetErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values []uint64
	}{
		{"empty", nil},
		{"absent marker", []uint64{1, credential.Absent}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewSet(tc.values); !errors.Is(err, ErrSet) {
				t.Fatalf("NewSet error = %v, want ErrSet", err)
			}
		})
	}
	t.Run("too many", func(t *testing.T) {
		if _, err := newSet([]uint64{1, 2, 3, 4, 5}, 2); !errors.Is(err, ErrSet) {
			t.Fatalf("error = %v, want ErrSet", err)
		}
	})
	t.Run("not a member", func(t *testing.T) {
		s, err := NewSet([]uint64{1, 2})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Prove(3); !errors.Is(err, ErrNotMember) {
			t.Fatalf("Prove error = %v, want ErrNotMember", err)
		}
		if s.Contains(3) || !s.Contains(2) {
			t.Fatal("Contains is wrong")
		}
	})
	t.Run("duplicates collapse", func(t *testing.T) {
		a, _ := NewSet([]uint64{5, 1, 5, 1})
		b, _ := NewSet([]uint64{1, 5})
		ra, rb := a.Root(), b.Root()
		if !ra.Equal(&rb) {
			t.Fatal("duplicate values change the root")
		}
	})
}

// TestLeafHashIsPoseidon2 checks that a leaf C(0, v) is the Poseidon2
// Merkle–Damgård hash H(v) of gnark-crypto, and a node is the bare
// compression (not H(l, r)).
func TestLeafHashIsPoseidon2(t *testing.T) {
	var v credential.Element
	v.SetUint64(123456789)
	want := credential.Hash(v)
	got := leafHash(leafBytes(123456789))
	wb := want.Bytes()
	if !bytes.Equal(got, wb[:]) {
		t.Fatalf("leaf hash %x, want H(v) %x", got, wb)
	}
	var l, r credential.Element
	l.SetUint64(1)
	r.SetUint64(2)
	lb, rb := l.Bytes(), r.Bytes()
	md := credential.Hash(l, r)
	mdb := md.Bytes()
	if bytes.Equal(parentHash(lb[:], rb[:]), mdb[:]) {
		t.Fatal("node hash is the two-block Merkle–Damgård hash, want the bare compression")
	}
}
