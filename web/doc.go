// Package web is healthgw's patient app (/app/) and regulator console
// (/console/): server-rendered pages from Go html/template files embedded
// in the binary, over the same use-case services as the API (access,
// the consent projection, the registry and the ledger). It holds no
// business rule: grants and revocations go through access.Service,
// listings through the consent store, receipts and proofs through the
// ledger package.
//
// The gateway is the patients' and staff's backend-for-frontend: sign-in
// is the OpenID Connect authorization code flow with PKCE
// (github.com/coreos/go-oidc/v3 and golang.org/x/oauth2); the browser
// holds only an opaque session ID in a Secure, HttpOnly, SameSite=Lax
// cookie, never a token. Sessions live in server memory (see
// sessionStore): a restart signs everyone out, which is the safe failure,
// and a gateway is one process (replicated deployments put sessions
// behind sticky routing or replace the store).
//
// Every response carries a strict Content-Security-Policy (no inline
// script or style); every state-changing form carries the session's
// synchronizer CSRF token and is refused without it. Pages work without
// JavaScript; the only scripts check receipts and the ledger in the
// browser with WebCrypto. Strings live in message catalogues
// (locales/*.toml, English and Chinese) chosen from Accept-Language or
// the visible switch.
package web
