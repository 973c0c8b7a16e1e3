// receipt.js — checks every receipt on the page (elements with class
// "receipt") and shows "verified" or "not verified", then what the
// verified receipt says. A receipt is the entry's public leaf, its
// inclusion proof, the signed checkpoint, the entry's header and its
// opening (the statement its author signed). Checked here, trusting the
// server for nothing: the checkpoint's Ed25519 signature by the ledger's
// key, the RFC 6962 inclusion of the leaf's bytes under the signed root
// (tlog.js), the leaf's seal of the header, the header's commitment to
// the statement and the statement's type, author and org (entry.js).
// What the receipt says (the consent's grantee, categories, purposes and
// period) is read from the verified statement only.
"use strict";
(function () {
  const T = window.healthgwTlog;
  const E = window.healthgwEntry;

  function show(el, state, msg) {
    const out = el.querySelector(".verify-status");
    out.textContent = "";
    const mark = document.createElement("span");
    mark.className = "mark mark-" + state;
    mark.textContent = msg;
    out.appendChild(mark);
    el.dataset.verified = state;
  }

  function date(s) {
    const d = new Date(s);
    if (isNaN(d)) return s;
    return d.toLocaleDateString(document.documentElement.lang || undefined, { year: "numeric", month: "long", day: "numeric", timeZone: "UTC" });
  }

  function orgName(d, id) {
    let names = {};
    try { names = JSON.parse(d.orgNames || "{}"); } catch (e) { names = {}; }
    return names[id] ? names[id] + " (" + id + ")" : id;
  }

  // says lists what the statement says, as [label, value] pairs.
  function says(d, st) {
    const b = st.body, out = [[d.msgType, st.type]];
    switch (st.type) {
      case "consent.granted":
        out.push([d.msgGrantee, b.grantee && b.grantee.org ? orgName(d, b.grantee.org) : (b.grantee && b.grantee.kind) || ""]);
        out.push([d.msgDecision, b.decision]);
        out.push([d.msgCategories, (b.categories || []).join(", ") || d.msgAny]);
        if (b.record_ids) out.push([d.msgRecords, b.record_ids.join(", ")]);
        if (b.resource_types) out.push([d.msgResourceTypes, b.resource_types.join(", ")]);
        out.push([d.msgPurposes, (b.purposes || []).join(", ") || d.msgAny]);
        out.push([d.msgPeriod, date(b.not_before) + " – " + date(b.not_after)]);
        out.push([d.msgConsentId, b.consent_id]);
        break;
      case "consent.revoked":
        out.push([d.msgConsentId, b.consent_id]);
        break;
    }
    out.push([d.msgAuthor, st.author]);
    return out;
  }

  function render(el, pairs) {
    const dl = el.querySelector(".receipt-says");
    if (!dl) return;
    dl.textContent = "";
    for (const [k, v] of pairs) {
      const dt = document.createElement("dt");
      dt.textContent = k;
      const dd = document.createElement("dd");
      dd.textContent = v;
      dl.append(dt, dd);
    }
    dl.hidden = pairs.length === 0;
  }

  async function verify(el) {
    const d = el.dataset;
    render(el, []);
    if (!T || !E || !T.supported()) { show(el, "bad", d.msgNojs); return; }
    show(el, "pending", d.msgChecking);
    try {
      const leaf = T.b64(d.entry);
      await T.verifyReceipt({
        entry: leaf,
        index: BigInt(d.index),
        size: BigInt(d.size),
        proof: d.proof ? d.proof.split(" ").map(T.b64) : [],
        checkpoint: d.checkpoint,
      }, d.key);
      if (!d.header || !d.opening) throw new Error("the receipt carries no header and opening");
      const entry = await E.check(leaf, T.b64(d.header), T.b64(d.opening));
      render(el, says(d, entry.statement));
      show(el, "ok", d.msgOk);
    } catch (e) {
      render(el, []);
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
