// ledger.js — the console's "verify the ledger" button: fetch the signed
// checkpoint and every entry bundle from the C2SP tlog-tiles API, check
// that each entry is a v2 leaf (entry.js: {"v":2,"type","time","seal"},
// canonical), recompute the RFC 6962 tree and compare it with the signed
// root, with progress; then check the witnesses' cosignatures on that
// checkpoint (cosig.js) against the threshold the page states. The tiles
// carry leaves only: what is checked here is the public tree, as
// `healthgw ledger verify` checks it without the bodies.
"use strict";
(function () {
  const T = window.healthgwTlog;
  const E = window.healthgwEntry;
  const box = document.getElementById("ledger-verify");
  if (!box) return;
  const d = box.dataset;
  const button = document.getElementById("verify-start");
  const progress = document.getElementById("verify-progress");
  const count = document.getElementById("verify-count");
  const result = document.getElementById("verify-result");

  function show(state, msg) {
    result.textContent = "";
    const mark = document.createElement("span");
    mark.className = "mark mark-" + state;
    mark.textContent = msg;
    result.appendChild(mark);
    box.dataset.verified = state;
  }

  async function fetchOK(path, as) {
    const r = await fetch(d.base + path, { credentials: "omit", cache: "no-store" });
    if (!r.ok) throw new Error(path + ": HTTP " + r.status);
    return as === "text" ? r.text() : r.arrayBuffer();
  }

  async function run() {
    button.disabled = true;
    show("pending", d.msgRunning);
    try {
      const note = await fetchOK("checkpoint", "text");
      const cp = await T.openCheckpoint(note, d.key);
      const size = Number(cp.size);
      progress.max = Math.max(size, 1);
      progress.value = 0;
      const tb = new T.TreeBuilder();
      for (let n = 0; n * 256 < size; n++) {
        const w = Math.min(size - n * 256, 256);
        const path = "tile/entries/" + T.tileIndex(n) + (w < 256 ? ".p/" + w : "");
        const entries = T.parseBundle(await fetchOK(path));
        if (entries.length < w) throw new Error("entry bundle " + n + " is short");
        for (let i = 0; i < w; i++) {
          try {
            E.parseLeaf(entries[i]);
          } catch (e) {
            throw new Error("entry " + (n * 256 + i) + ": " + e.message);
          }
          await tb.add(await T.leafHash(entries[i]));
        }
        progress.value = tb.size;
        count.textContent = tb.size + " / " + size;
      }
      const root = await tb.root();
      if (!T.equal(root, cp.root)) throw new Error("recomputed root differs from the signed root");
      if (window.healthgwCosig && !(await window.healthgwCosig.verifyPage(note))) {
        box.dataset.reason = "too few valid witness cosignatures";
        show("bad", d.msgWitnesses);
        return;
      }
      show("ok", d.msgOk);
    } catch (e) {
      box.dataset.reason = String(e && e.message);
      show("bad", d.msgBad);
    } finally {
      button.disabled = false;
    }
  }

  if (!T || !E || !T.supported()) { show("bad", d.msgNojs); return; }
  button.disabled = false;
  button.addEventListener("click", run);
  window.healthgwLedger = { run };
})();
