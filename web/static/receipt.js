// receipt.js — checks every receipt on the page (elements with class
// "receipt") with tlog.js and shows "verified" or "not verified".
"use strict";
(function () {
  const T = window.healthgwTlog;

  function show(el, state, msg) {
    const out = el.querySelector(".verify-status");
    out.textContent = "";
    const mark = document.createElement("span");
    mark.className = "mark mark-" + state;
    mark.textContent = msg;
    out.appendChild(mark);
    el.dataset.verified = state;
  }

  async function verify(el) {
    const d = el.dataset;
    if (!T || !T.supported()) { show(el, "bad", d.msgNojs); return; }
    show(el, "pending", d.msgChecking);
    try {
      await T.verifyReceipt({
        entry: T.b64(d.entry),
        index: BigInt(d.index),
        size: BigInt(d.size),
        proof: d.proof ? d.proof.split(" ").map(T.b64) : [],
        checkpoint: d.checkpoint,
      }, d.key);
      show(el, "ok", d.msgOk);
    } catch (e) {
      show(el, "bad", d.msgBad);
      el.dataset.reason = String(e && e.message);
    }
  }

  function verifyAll() {
    return Promise.all(Array.from(document.querySelectorAll(".receipt")).map(verify));
  }

  window.healthgwReceipts = { verify, verifyAll };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", verifyAll);
  else verifyAll();
})();
