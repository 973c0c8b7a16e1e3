// Package ceremony runs the multi-party Groth16 setup that produces
// healthgw's production proving and verifying keys, with gnark's
// backend/groth16/bn254/mpcsetup (the two-phase protocol of
// https://eprint.iacr.org/2017/1050, Bowe–Gabizon–Miers).
//
// The whole transcript lives in one directory that is passed from
// participant to participant (or shared):
//
//	<dir>/ceremony.json              state: circuits, domain, phase, contributions, beacons, key hashes
//	<dir>/phase1/0001.bin …          phase 1 ("powers of tau") contributions, in order
//	<dir>/phase1/srs.bin             the sealed phase 1 result (after phase 1 is finalized)
//	<dir>/phase2/<stmt>/0000.bin     the circuit-specific starting point, derived from srs.bin
//	<dir>/phase2/<stmt>/0001.bin …   phase 2 contributions
//	<dir>/keys/                      the final key directory (circuits.WriteKeys)
//
// Steps (healthgw zk ceremony …):
//
//  1. init: the coordinator fixes the statements; the phase 1 domain is the
//     smallest power of two that fits the largest circuit.
//  2. contribute: each hospital in turn adds fresh randomness (from
//     crypto/rand) with a proof of knowledge, then forgets it. Its receipt
//     lists the SHA-256 of the files it wrote; publishing it lets anyone
//     check later that the contribution is in the final transcript.
//  3. finalize --beacon: closes phase 1 with a public random beacon (a
//     value nobody could know before the last contribution, for example a
//     future drand round), deriving every circuit's phase 2 start.
//  4. contribute again, each hospital, now to phase 2 of every circuit.
//  5. finalize --beacon: closes phase 2 with a second beacon and writes the
//     key directory (setup kind "ceremony").
//
// verify, which anyone can run at any time, replays the transcript from
// the deterministic starting point: every contribution's proofs against
// its predecessor, the phase 1 seal, every circuit's phase 2 start, and
// after the end the keys themselves. The keys are sound if at least one
// contributor was honest, i.e. destroyed its randomness.
package ceremony
