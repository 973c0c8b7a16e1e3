// tlog.js — checks healthgw ledger receipts and checkpoints in the
// browser with WebCrypto, without trusting the page's server:
//   * C2SP signed notes (golang.org/x/mod/sumdb/note): an Ed25519
//     signature by the checkpoint key over the note text, named by the
//     key's 4-byte hash;
//   * C2SP checkpoints (origin, size, base64 root hash);
//   * RFC 6962 / RFC 9162 Merkle trees with SHA-256: leaf hash
//     H(0x00 || entry), node hash H(0x01 || left || right), inclusion
//     proofs (RFC 9162 section 2.1.3.2) and the tree head of a list of
//     leaves.
// No strings for people live here: pages give them in data attributes.
"use strict";
(function (global) {
  const enc = new TextEncoder();

  function b64(s) {
    const bin = atob(s);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  function concat(...parts) {
    let n = 0;
    for (const p of parts) n += p.length;
    const out = new Uint8Array(n);
    let o = 0;
    for (const p of parts) { out.set(p, o); o += p.length; }
    return out;
  }

  function equal(a, b) {
    if (a.length !== b.length) return false;
    let d = 0;
    for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
    return d === 0;
  }

  async function sha256(bytes) {
    return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  }

  const leafHash = (entry) => sha256(concat(Uint8Array.of(0), entry));
  const nodeHash = (l, r) => sha256(concat(Uint8Array.of(1), l, r));

  // parseVerifierKey reads "name+hash+base64(0x01 || key)".
  async function parseVerifierKey(vkey) {
    // The base64 key may itself contain "+": split at the first two only.
    const v = vkey.trim(), i = v.indexOf("+"), j = v.indexOf("+", i + 1);
    if (i <= 0 || j < 0) throw new Error("malformed verifier key");
    const name = v.slice(0, i), hashHex = v.slice(i + 1, j), keyB64 = v.slice(j + 1);
    if (!/^[0-9a-f]{8}$/.test(hashHex)) throw new Error("malformed verifier key hash");
    const raw = b64(keyB64);
    if (raw.length !== 33 || raw[0] !== 1) throw new Error("not an Ed25519 note key");
    const h = (await sha256(concat(enc.encode(name + "\n"), raw))).slice(0, 4);
    const hex = Array.from(h, (x) => x.toString(16).padStart(2, "0")).join("");
    if (hex !== hashHex.toLowerCase()) throw new Error("verifier key hash does not match the key");
    const key = await crypto.subtle.importKey("raw", raw.slice(1), { name: "Ed25519" }, false, ["verify"]);
    return { name, hash: h, key };
  }

  // openNote checks that the note carries a valid signature by vk and
  // returns its text (everything up to the blank line, with its newline).
  async function openNote(note, vk) {
    const i = note.indexOf("\n\n");
    if (i < 0) throw new Error("malformed note");
    const text = note.slice(0, i + 1);
    const sigs = note.slice(i + 2).split("\n");
    for (const line of sigs) {
      if (!line.startsWith("\u2014 ")) continue;
      const [name, sigB64] = line.slice(2).split(" ");
      if (name !== vk.name || !sigB64) continue;
      const sig = b64(sigB64);
      if (sig.length !== 68 || !equal(sig.slice(0, 4), vk.hash)) continue;
      if (await crypto.subtle.verify({ name: "Ed25519" }, vk.key, sig.slice(4), enc.encode(text))) return text;
    }
    throw new Error("no valid signature by the checkpoint key");
  }

  // openCheckpoint verifies a signed checkpoint and parses it.
  async function openCheckpoint(note, vkey) {
    const vk = await parseVerifierKey(vkey);
    const lines = (await openNote(note, vk)).split("\n");
    if (lines.length < 4) throw new Error("malformed checkpoint");
    if (!/^[0-9]+$/.test(lines[1])) throw new Error("malformed checkpoint size");
    const root = b64(lines[2]);
    if (root.length !== 32) throw new Error("malformed checkpoint root");
    return { origin: lines[0], size: BigInt(lines[1]), root };
  }

  // rootFromInclusion is RFC 9162 2.1.3.2: the root implied by a leaf at
  // index in a tree of size and its inclusion proof.
  async function rootFromInclusion(index, size, leaf, proof) {
    if (index >= size) throw new Error("index beyond the tree");
    let fn = index, sn = size - 1n, r = leaf;
    for (const p of proof) {
      if (sn === 0n) throw new Error("proof too long");
      if ((fn & 1n) === 1n || fn === sn) {
        r = await nodeHash(p, r);
        while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
      } else {
        r = await nodeHash(r, p);
      }
      fn >>= 1n; sn >>= 1n;
    }
    if (sn !== 0n) throw new Error("proof too short");
    return r;
  }

  // verifyReceipt checks entry, proof and checkpoint against the key.
  async function verifyReceipt(r, vkey) {
    const cp = await openCheckpoint(r.checkpoint, vkey);
    if (cp.size !== r.size) throw new Error("checkpoint is for another tree size");
    JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(r.entry)); // an entry is JSON
    const root = await rootFromInclusion(r.index, r.size, await leafHash(r.entry), r.proof);
    if (!equal(root, cp.root)) throw new Error("inclusion proof does not lead to the signed root");
    return cp;
  }

  // TreeBuilder computes the RFC 6962 tree head of leaves added in order.
  class TreeBuilder {
    constructor() { this.stack = []; this.size = 0; }
    async add(leaf) {
      let node = { h: leaf, n: 1 };
      while (this.stack.length && this.stack[this.stack.length - 1].n === node.n) {
        const left = this.stack.pop();
        node = { h: await nodeHash(left.h, node.h), n: node.n * 2 };
      }
      this.stack.push(node);
      this.size++;
    }
    async root() {
      if (!this.stack.length) return sha256(new Uint8Array(0));
      let r = this.stack[this.stack.length - 1].h;
      for (let i = this.stack.length - 2; i >= 0; i--) r = await nodeHash(this.stack[i].h, r);
      return r;
    }
  }

  // tileIndex formats N as C2SP tlog-tiles does: "x001/x234/067".
  function tileIndex(n) {
    let s = String(n);
    while (s.length % 3) s = "0" + s;
    const groups = s.match(/.{3}/g);
    return groups.map((g, i) => (i < groups.length - 1 ? "x" + g : g)).join("/");
  }

  // parseBundle splits an entry bundle: per entry a 2-byte big-endian
  // length and the bytes.
  function parseBundle(buf) {
    const b = new Uint8Array(buf), out = [];
    let o = 0;
    while (o < b.length) {
      if (o + 2 > b.length) throw new Error("truncated entry bundle");
      const n = (b[o] << 8) | b[o + 1];
      o += 2;
      if (o + n > b.length) throw new Error("truncated entry bundle");
      out.push(b.slice(o, o + n));
      o += n;
    }
    return out;
  }

  const supported = () => !!(global.crypto && crypto.subtle && global.TextEncoder);

  global.healthgwTlog = { b64, equal, sha256, leafHash, nodeHash, openCheckpoint, rootFromInclusion, verifyReceipt, TreeBuilder, tileIndex, parseBundle, supported };
})(window);
