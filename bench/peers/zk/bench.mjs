// The circom2 + snarkjs side of bench/peers' ZK pair (see age.circom).
//
//   node bench.mjs input OUT.json                      a valid witness input
//   node bench.mjs prove WASM ZKEY INPUT SECONDS OUTDIR  prove in a loop
//   node bench.mjs verify VKEY PROOF PUBLIC SECONDS      verify in a loop
//
// prove and verify print one JSON line {"ops":N,"seconds":S}; the loop
// runs at least once and until SECONDS have passed.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import * as snarkjs from "snarkjs";
import { buildEddsa, buildPoseidon } from "circomlibjs";

const day = (s) => Math.round((Date.UTC(...s.split("-").map((v, i) => (i === 1 ? v - 1 : +v))) - Date.UTC(1900, 0, 1)) / 86400000);

async function input(out) {
  const eddsa = await buildEddsa();
  const poseidon = await buildPoseidon();
  const F = poseidon.F;
  const prv = randomBytes(32);
  const pub = eddsa.prv2pub(prv);
  const secret = BigInt("0x" + randomBytes(31).toString("hex"));
  const scope = BigInt("0x" + randomBytes(31).toString("hex"));
  const nonce = BigInt("0x" + randomBytes(16).toString("hex"));
  const absent = (1n << 64n) - 1n;
  // birth_date, sex, hba1c, ldl, bmi, diagnosis, systolic_bp, last_visit (absent)
  const attrs = [BigInt(day("1990-04-01")), 2n, 720n, 130n, 314n, 1109n, 128n, absent];
  const schema = 1n, expiry = BigInt(day("2027-12-31")), date = BigInt(day("2026-03-01"));
  const cutoff = BigInt(day("2008-03-01"));
  const holder = poseidon([2n, secret]);
  const m = poseidon([1n, F.toObject(holder), ...attrs, schema * 4294967296n + expiry]);
  const sig = eddsa.signPoseidon(prv, m);
  const nullifier = F.toObject(poseidon([3n, secret, scope]));
  const s = (v) => v.toString();
  const inp = {
    issuerAx: s(F.toObject(pub[0])), issuerAy: s(F.toObject(pub[1])), schema: s(schema), attribute: "0",
    date: s(date), scope: s(scope), nonce: s(nonce), nullifier: s(nullifier), cutoff: s(cutoff),
    secret: s(secret), attrs: attrs.map(s), expiry: s(expiry),
    R8x: s(F.toObject(sig.R8[0])), R8y: s(F.toObject(sig.R8[1])), S: s(sig.S),
  };
  writeFileSync(out, JSON.stringify(inp, null, 1));
}

async function prove(wasm, zkey, inputPath, seconds, outdir) {
  const inp = JSON.parse(readFileSync(inputPath, "utf8"));
  // One proof outside the timing: it loads the key and warms the pool.
  let r = await snarkjs.groth16.fullProve(inp, wasm, zkey);
  let ops = 0;
  const start = process.hrtime.bigint();
  let el = 0;
  do {
    r = await snarkjs.groth16.fullProve(inp, wasm, zkey);
    ops++;
    el = Number(process.hrtime.bigint() - start) / 1e9;
  } while (el < seconds);
  writeFileSync(join(outdir, "proof.json"), JSON.stringify(r.proof));
  writeFileSync(join(outdir, "public.json"), JSON.stringify(r.publicSignals));
  console.log(JSON.stringify({ ops, seconds: el }));
}

async function verify(vkeyPath, proofPath, publicPath, seconds) {
  const vk = JSON.parse(readFileSync(vkeyPath, "utf8"));
  const proof = JSON.parse(readFileSync(proofPath, "utf8"));
  const pub = JSON.parse(readFileSync(publicPath, "utf8"));
  if (!(await snarkjs.groth16.verify(vk, pub, proof))) throw new Error("valid proof rejected");
  // A changed public input must fail (the benchmark verifies real proofs).
  const bad = [...pub];
  bad[bad.length - 1] = (BigInt(bad[bad.length - 1]) + 1n).toString();
  if (await snarkjs.groth16.verify(vk, bad, proof)) throw new Error("proof accepted for another cutoff");
  let ops = 0;
  const start = process.hrtime.bigint();
  let el = 0;
  do {
    if (!(await snarkjs.groth16.verify(vk, pub, proof))) throw new Error("valid proof rejected");
    ops++;
    el = Number(process.hrtime.bigint() - start) / 1e9;
  } while (el < seconds);
  console.log(JSON.stringify({ ops, seconds: el }));
}

const [cmd, ...args] = process.argv.slice(2);
try {
  switch (cmd) {
    case "input": await input(args[0]); break;
    case "prove": await prove(args[0], args[1], args[2], Number(args[3]), args[4]); break;
    case "verify": await verify(args[0], args[1], args[2], Number(args[3])); break;
    default: throw new Error(`unknown command ${cmd}`);
  }
  process.exit(0);
} catch (e) {
  console.error(`bench.mjs ${cmd}: ${e.message}`);
  process.exit(1);
}
