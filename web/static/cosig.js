// cosig.js — checks witness cosignatures on a checkpoint in the browser
// with WebCrypto (C2SP tlog-cosignature/v1, as
// transparency-dev/formats/note writes them):
//   * a witness key is "name+hash+base64(0x04 || Ed25519 public key)",
//     its key hash the first 4 bytes of SHA-256(name || "\n" || 0x04 ||
//     key);
//   * its cosignature is a note signature line "— name base64(key hash
//     (4) || timestamp (8, big-endian Unix seconds) || Ed25519 signature
//     (64))" over "cosignature/v1\ntime <timestamp>\n" followed by the
//     checkpoint's text.
// verifyPage checks the witnesses the page lists (#witnesses) on a
// checkpoint note, marks each row and says whether the threshold is met.
// No strings for people live here: the page gives them in data
// attributes.
"use strict";
(function (global) {
  const T = global.healthgwTlog;
  const enc = new TextEncoder();

  function concat(...parts) {
    let n = 0;
    for (const p of parts) n += p.length;
    const out = new Uint8Array(n);
    let o = 0;
    for (const p of parts) { out.set(p, o); o += p.length; }
    return out;
  }

  function hex(b) { return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join(""); }

  // parseWitnessKey reads a cosignature/v1 verifier key (a plain Ed25519
  // note key, algorithm 0x01, is read as the same key, as Go does).
  async function parseWitnessKey(vkey) {
    const v = vkey.trim(), i = v.indexOf("+"), j = v.indexOf("+", i + 1);
    if (i <= 0 || j < 0) throw new Error("malformed witness key");
    const name = v.slice(0, i), hashHex = v.slice(i + 1, j), raw = T.b64(v.slice(j + 1));
    if (raw.length !== 33 || (raw[0] !== 4 && raw[0] !== 1)) throw new Error("not an Ed25519 cosignature/v1 key");
    const pub = raw.slice(1);
    const hash = (await T.sha256(concat(enc.encode(name + "\n"), Uint8Array.of(4), pub))).slice(0, 4);
    if (raw[0] === 4 && hex(hash) !== hashHex.toLowerCase()) throw new Error("witness key hash does not match the key");
    const key = await crypto.subtle.importKey("raw", pub, { name: "Ed25519" }, false, ["verify"]);
    return { name, hash, key };
  }

  // cosignatures returns, for each witness key, the time of its valid
  // cosignature on note (a Date), or null when the note carries none.
  async function cosignatures(note, vkeys) {
    const i = note.indexOf("\n\n");
    if (i < 0) throw new Error("malformed note");
    const text = note.slice(0, i + 1);
    const lines = note.slice(i + 2).split("\n").filter((l) => l.startsWith("\u2014 "));
    const out = [];
    for (const vkey of vkeys) {
      const w = await parseWitnessKey(vkey);
      let found = null;
      for (const line of lines) {
        const sp = line.indexOf(" ", 2);
        if (sp < 0 || line.slice(2, sp) !== w.name) continue;
        let sig;
        try { sig = T.b64(line.slice(sp + 1)); } catch (e) { continue; }
        if (sig.length !== 76 || !T.equal(sig.slice(0, 4), w.hash)) continue;
        let t = 0n;
        for (let k = 4; k < 12; k++) t = (t << 8n) | BigInt(sig[k]);
        const msg = enc.encode("cosignature/v1\ntime " + t + "\n" + text);
        if (await crypto.subtle.verify({ name: "Ed25519" }, w.key, sig.slice(12), msg)) {
          found = new Date(Number(t) * 1000);
          break;
        }
      }
      out.push(found);
    }
    return out;
  }

  function mark(el, state, msg) {
    el.textContent = "";
    const m = document.createElement("span");
    m.className = "mark mark-" + state;
    m.textContent = msg;
    el.appendChild(m);
  }

  function fill(msg, n, m, k) {
    return msg.replace("{n}", n).replace("{m}", m).replace("{k}", k);
  }

  // verifyPage checks the page's witnesses on note and reports whether
  // enough cosigned (true when the page lists none).
  async function verifyPage(note) {
    const box = document.getElementById("witnesses");
    if (!box) return true;
    const d = box.dataset;
    const keys = d.keys.split(" ").filter(Boolean);
    const k = Number(d.threshold);
    const result = document.getElementById("witness-result");
    let times;
    try {
      times = await cosignatures(note, keys);
    } catch (e) {
      box.dataset.reason = String(e && e.message);
      times = keys.map(() => null);
    }
    const rows = box.querySelectorAll("tr.witness");
    let n = 0;
    times.forEach((t, i) => {
      const cell = rows[i] && rows[i].querySelector(".witness-check");
      if (t) n++;
      if (!cell) return;
      rows[i].dataset.cosig = t ? "ok" : "bad";
      if (t) mark(cell, "ok", d.msgOk + " (" + t.toISOString().replace("T", " ").slice(0, 19) + " UTC)");
      else mark(cell, "bad", d.msgMissing);
    });
    const met = n >= k;
    box.dataset.cosigned = String(n);
    box.dataset.verified = met ? "ok" : "bad";
    mark(result, met ? "ok" : "bad", fill(met ? d.msgMet : d.msgShort, n, keys.length, k));
    return met;
  }

  global.healthgwCosig = { parseWitnessKey, cosignatures, verifyPage };
})(window);
