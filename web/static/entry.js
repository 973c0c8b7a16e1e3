// entry.js — checks a healthgw ledger entry of format v2 in the browser
// (docs/design/ledger-privacy.md, "Entry format v2"), with WebCrypto:
//   * the leaf (the bytes in the public tree) {"v":2,"type","time","seal"}
//     carries seal = SHA-256("healthgw/entry/v2/seal\n" || header bytes);
//   * the header {"type","v":2,"author","org","commitment","sig","att"}
//     carries commitment = SHA-256("healthgw/entry/v2/commitment\n" ||
//     statement bytes), and att = SHA-256("healthgw/entry/v2/attestations\n"
//     || the attestations' canonical JSON array), or "" without any;
//   * the opening {"statement":…,"attestations":[…],"justification":{…}}
//     carries the statement {"type","v":2,"author","org","salt","body"}
//     exactly as its author's bytes, and the statement's type, author and
//     org are the header's.
// Each layer is canonical JSON: keys in a fixed order, no white space; a
// layer that is not is refused, so that what the page shows is what was
// hashed (no duplicate keys, no second reading). The header's Ed25519
// signature is by the author gateway's node key, which the ledger's
// registry holds; the receipt's trust anchor is the checkpoint key
// (tlog.js), under which the leaf is proved.
// No strings for people live here: pages give them in data attributes.
"use strict";
(function (global) {
  const enc = new TextEncoder();
  const dec = new TextDecoder("utf-8", { fatal: true });

  const SEAL = "healthgw/entry/v2/seal\n";
  const COMMITMENT = "healthgw/entry/v2/commitment\n";
  const ATTESTATIONS = "healthgw/entry/v2/attestations\n";

  function concat(a, b) {
    const out = new Uint8Array(a.length + b.length);
    out.set(a, 0);
    out.set(b, a.length);
    return out;
  }

  async function domainHash(domain, bytes) {
    const h = new Uint8Array(await crypto.subtle.digest("SHA-256", concat(enc.encode(domain), bytes)));
    return Array.from(h, (x) => x.toString(16).padStart(2, "0")).join("");
  }

  // canonical is how the gateway writes JSON (Go's encoding/json without
  // HTML escaping): JSON.stringify's, but for U+2028 and U+2029, which Go
  // always escapes.
  function canonical(v) {
    return JSON.stringify(v).replace(/\u2028/g, "\\u2028").replace(/\u2029/g, "\\u2029");
  }

  // parseLayer decodes bytes as a JSON object whose keys are exactly keys
  // (optional ones may be missing) in that order, written canonically.
  function parseLayer(bytes, what, keys, optional) {
    const text = dec.decode(bytes);
    const v = JSON.parse(text);
    if (v === null || typeof v !== "object" || Array.isArray(v)) throw new Error(what + " is not an object");
    const want = keys.filter((k) => k in v || !(optional || []).includes(k));
    const got = Object.keys(v);
    if (got.length !== want.length || got.some((k, i) => k !== want[i])) throw new Error(what + " has keys " + got.join(","));
    if (canonical(v) !== text) throw new Error(what + " is not in canonical form");
    return v;
  }

  const hex64 = /^[0-9a-f]{64}$/;

  // parseLeaf decodes a v2 leaf.
  function parseLeaf(bytes) {
    const l = parseLayer(bytes, "leaf", ["v", "type", "time", "seal"]);
    if (l.v !== 2 || typeof l.type !== "string" || typeof l.time !== "string" || !hex64.test(l.seal)) throw new Error("malformed leaf");
    return l;
  }

  // parseHeader decodes a v2 header.
  function parseHeader(bytes) {
    const h = parseLayer(bytes, "header", ["type", "v", "author", "org", "commitment", "sig", "att"]);
    if (h.v !== 2 || typeof h.type !== "string" || typeof h.author !== "string" || typeof h.org !== "string" ||
      !hex64.test(h.commitment) || typeof h.sig !== "string" || !(h.att === "" || hex64.test(h.att))) {
      throw new Error("malformed header");
    }
    return h;
  }

  // valueEnd returns the offset just past the JSON value starting at i in
  // text (an object or array: brackets matched outside strings).
  function valueEnd(text, i) {
    const open = text[i];
    if (open !== "{" && open !== "[") throw new Error("expected an object or array at " + i);
    let depth = 0, inString = false;
    for (let j = i; j < text.length; j++) {
      const c = text[j];
      if (inString) {
        if (c === "\\") j++;
        else if (c === '"') inString = false;
      } else if (c === '"') {
        inString = true;
      } else if (c === "{" || c === "[") {
        depth++;
      } else if (c === "}" || c === "]") {
        depth--;
        if (depth === 0) return j + 1;
      }
    }
    throw new Error("unterminated JSON value");
  }

  // splitOpening returns the exact bytes of an opening's statement and
  // attestations (null when it has none), and its justification.
  function splitOpening(bytes) {
    const text = dec.decode(bytes);
    const prefix = '{"statement":';
    if (!text.startsWith(prefix)) throw new Error("malformed opening");
    let i = prefix.length;
    const sEnd = valueEnd(text, i);
    const statement = enc.encode(text.slice(i, sEnd));
    i = sEnd;
    let attestations = null;
    const attKey = ',"attestations":';
    if (text.startsWith(attKey, i)) {
      i += attKey.length;
      const aEnd = valueEnd(text, i);
      attestations = enc.encode(text.slice(i, aEnd));
      i = aEnd;
    }
    // The whole opening must be canonical too (nothing beside the parts).
    parseLayer(bytes, "opening", ["statement", "attestations", "justification"], ["attestations", "justification"]);
    const o = JSON.parse(text);
    return { statement, attestations, justification: o.justification || null };
  }

  // check checks the entry whose public leaf, header and opening are
  // given (bytes), short of the leaf's inclusion (tlog.js) and the
  // header's signature: seal, commitment, attestations digest, and the
  // statement's type, author and org against the header's. It returns the
  // leaf, header and statement, parsed.
  async function check(leafBytes, headerBytes, openingBytes) {
    const leaf = parseLeaf(leafBytes);
    if ((await domainHash(SEAL, headerBytes)) !== leaf.seal) throw new Error("the header is not the one the leaf seals");
    const header = parseHeader(headerBytes);
    if (header.type !== leaf.type) throw new Error("the header's type is not the leaf's");
    const o = splitOpening(openingBytes);
    if ((await domainHash(COMMITMENT, o.statement)) !== header.commitment) throw new Error("the statement is not the one the header commits to");
    const st = parseLayer(o.statement, "statement", ["type", "v", "author", "org", "salt", "body"]);
    if (st.v !== 2 || st.type !== header.type || st.author !== header.author || st.org !== header.org) {
      throw new Error("the statement's type, author or org is not the header's");
    }
    if (st.body === null || typeof st.body !== "object" || Array.isArray(st.body)) throw new Error("malformed statement body");
    const att = o.attestations ? await domainHash(ATTESTATIONS, o.attestations) : "";
    if (att !== header.att) throw new Error("the attestations are not the ones the header names");
    return { leaf, header, statement: st, attestations: o.attestations ? JSON.parse(dec.decode(o.attestations)) : [] };
  }

  global.healthgwEntry = { parseLeaf, parseHeader, splitOpening, check };
})(window);
