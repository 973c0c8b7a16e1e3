// Passkeys in the patient app: the WebAuthn registration ceremony on the
// passkey page, and the assertion over a prepared consent change's
// commitment on the signing page. No inline script (CSP); every POST
// carries the page's CSRF token.
"use strict";
(function () {
  const b64u = {
    enc(buf) {
      const b = new Uint8Array(buf);
      let s = "";
      for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]);
      return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    },
    dec(str) {
      const s = atob(str.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((str.length + 3) % 4));
      const b = new Uint8Array(s.length);
      for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i);
      return b.buffer;
    },
  };

  function showError(el, text) {
    el.textContent = text;
    el.hidden = false;
    el.focus();
  }

  // Registration.
  const reg = document.getElementById("passkey-register");
  if (reg) {
    reg.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const err = document.getElementById("passkey-error");
      err.hidden = true;
      const csrf = reg.elements.csrf.value;
      try {
        const begin = await fetch(reg.action, { method: "POST", body: new URLSearchParams({ csrf }), credentials: "same-origin" });
        if (!begin.ok) throw new Error("begin " + begin.status);
        const opts = (await begin.json()).publicKey;
        opts.challenge = b64u.dec(opts.challenge);
        opts.user.id = b64u.dec(opts.user.id);
        (opts.excludeCredentials || []).forEach((c) => { c.id = b64u.dec(c.id); });
        const cred = await navigator.credentials.create({ publicKey: opts });
        const body = {
          id: cred.id, rawId: b64u.enc(cred.rawId), type: cred.type,
          response: {
            clientDataJSON: b64u.enc(cred.response.clientDataJSON),
            attestationObject: b64u.enc(cred.response.attestationObject),
            transports: cred.response.getTransports ? cred.response.getTransports() : [],
          },
          clientExtensionResults: cred.getClientExtensionResults(),
        };
        const fin = await fetch(reg.dataset.finish, {
          method: "POST", credentials: "same-origin",
          body: new URLSearchParams({ csrf, credential: JSON.stringify(body) }),
        });
        const out = await fin.json();
        if (!fin.ok) throw new Error(out.error || "finish " + fin.status);
        window.location.assign(out.next);
      } catch (e) {
        showError(err, e.message || String(e));
      }
    });
  }

  // Signing a prepared consent change: the challenge is the entry's
  // commitment.
  const sign = document.getElementById("passkey-sign");
  if (sign) {
    sign.addEventListener("submit", async (ev) => {
      if (sign.elements.assertion.value !== "") return; // signed: submit
      ev.preventDefault();
      const err = document.getElementById("passkey-error");
      err.hidden = true;
      try {
        const allow = sign.dataset.allow.split(" ").filter((s) => s).map((id) => ({ type: "public-key", id: b64u.dec(id) }));
        const cred = await navigator.credentials.get({
          publicKey: { challenge: b64u.dec(sign.dataset.challenge), rpId: sign.dataset.rpid, allowCredentials: allow, userVerification: "preferred", timeout: 120000 },
        });
        sign.elements.assertion.value = JSON.stringify({
          id: cred.id, type: cred.type,
          response: {
            authenticatorData: b64u.enc(cred.response.authenticatorData),
            clientDataJSON: b64u.enc(cred.response.clientDataJSON),
            signature: b64u.enc(cred.response.signature),
          },
        });
        sign.submit();
      } catch (e) {
        showError(err, err.dataset.failed);
      }
    });
  }
})();
