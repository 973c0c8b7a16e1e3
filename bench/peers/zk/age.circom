pragma circom 2.0.0;

// The peer of healthgw's circuits/age statement, written with circomlib's
// building blocks: "the selected date attribute of an issuer-signed,
// unexpired credential held by the prover is on or before a public
// cutoff" (with the birth date: at least 18 years old).
//
// Same shape as healthgw's statement (circuits/credential and
// circuits/age):
//   m = H(tagCredential, holder, a[0..7], schema*2^32 + expiry)
//   holder = H(tagHolder, secret); nullifier = H(tagNullifier, secret, scope)
//   EdDSA signature of the issuer over m, expiry >= date (32 bits),
//   the nonce bound in a constraint, the attribute selected by a public
//   index (< 8) and range-checked to 64 bits, the cutoff range-checked to
//   64 bits, attribute <= cutoff.
// Differences: H is circomlib's Poseidon (healthgw: Poseidon2 of
// gnark-crypto) and the signature is circomlib's EdDSA-Poseidon on
// BabyJubJub (healthgw: gnark's EdDSA on the same BN254 twisted Edwards
// curve with a Poseidon2 challenge hash); healthgw also checks S < l and
// range-checks the schema differently. The constraint counts are printed by
// the benchmark.

include "circomlib/circuits/eddsaposeidon.circom";
include "circomlib/circuits/poseidon.circom";
include "circomlib/circuits/comparators.circom";
include "circomlib/circuits/bitify.circom";

template Age() {
    // Public inputs (the same list as healthgw's credential.Public + Cutoff).
    signal input issuerAx;
    signal input issuerAy;
    signal input schema;
    signal input attribute;
    signal input date;
    signal input scope;
    signal input nonce;
    signal input nullifier;
    signal input cutoff;

    // Private: the credential and the holder secret.
    signal input secret;
    signal input attrs[8];
    signal input expiry;
    signal input R8x;
    signal input R8y;
    signal input S;

    // Holder commitment and nullifier.
    component holder = Poseidon(2);
    holder.inputs[0] <== 2;
    holder.inputs[1] <== secret;
    component nul = Poseidon(3);
    nul.inputs[0] <== 3;
    nul.inputs[1] <== secret;
    nul.inputs[2] <== scope;
    nullifier === nul.out;

    // The credential commitment and the issuer's signature over it.
    component expBits = Num2Bits(32);
    expBits.in <== expiry;
    component schemaBits = Num2Bits(32);
    schemaBits.in <== schema;
    component m = Poseidon(11);
    m.inputs[0] <== 1;
    m.inputs[1] <== holder.out;
    for (var i = 0; i < 8; i++) {
        m.inputs[2 + i] <== attrs[i];
    }
    m.inputs[10] <== schema * 4294967296 + expiry;
    component sig = EdDSAPoseidonVerifier();
    sig.enabled <== 1;
    sig.Ax <== issuerAx;
    sig.Ay <== issuerAy;
    sig.R8x <== R8x;
    sig.R8y <== R8y;
    sig.S <== S;
    sig.M <== m.out;

    // Not expired at the date.
    component dateBits = Num2Bits(32);
    dateBits.in <== date;
    component notExpired = LessEqThan(32);
    notExpired.in[0] <== date;
    notExpired.in[1] <== expiry;
    notExpired.out === 1;

    // The nonce is bound by a constraint.
    signal nonceSq;
    nonceSq <== nonce * nonce;

    // Select the attribute by the public index (exactly one match).
    component eq[8];
    signal terms[8];
    var sel = 0;
    var hits = 0;
    for (var i = 0; i < 8; i++) {
        eq[i] = IsEqual();
        eq[i].in[0] <== attribute;
        eq[i].in[1] <== i;
        terms[i] <== eq[i].out * attrs[i];
        sel += terms[i];
        hits += eq[i].out;
    }
    hits === 1;
    signal attr;
    attr <== sel;

    // attribute <= cutoff, both 64-bit.
    component attrBits = Num2Bits(64);
    attrBits.in <== attr;
    component cutBits = Num2Bits(64);
    cutBits.in <== cutoff;
    component le = LessEqThan(64);
    le.in[0] <== attr;
    le.in[1] <== cutoff;
    le.out === 1;
}

component main {public [issuerAx, issuerAy, schema, attribute, date, scope, nonce, nullifier, cutoff]} = Age();
