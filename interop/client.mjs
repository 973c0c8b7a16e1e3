// Third-party OAuth clients against a running healthgw, driven by
// interop_test.go. Environment:
//   HEALTHGW_URL   the gateway's base URL (its issuer)
//   ORG_ID         the organisation's ID (client_id)
//   ORG_KEY_FILE   the organisation's private signing JWK (with kid)
// Prints one JSON object: for each client, the token response's scope and
// what GET /v1/whoami answered.
import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import * as client from 'openid-client';
import * as jose from 'jose';

const base = process.env.HEALTHGW_URL;
const orgID = process.env.ORG_ID;
const jwk = JSON.parse(readFileSync(process.env.ORG_KEY_FILE, 'utf8'));
const key = await jose.importJWK(jwk, jwk.alg);

async function whoami(accessToken) {
  const res = await fetch(new URL('/v1/whoami', base), {
    headers: { Authorization: `Bearer ${accessToken}` },
  });
  if (!res.ok) throw new Error(`whoami: ${res.status} ${await res.text()}`);
  return res.json();
}

// 1. openid-client: RFC 8414 discovery, client_credentials with
// private_key_jwt and the library's default assertion (aud = the issuer,
// no typ). Plain http is allowed only because the test gateway listens on
// loopback.
async function openidClient() {
  const config = await client.discovery(
    new URL(base), orgID, undefined,
    client.PrivateKeyJwt({ key, kid: jwk.kid }),
    { algorithm: 'oauth2', execute: [client.allowInsecureRequests] },
  );
  const tokens = await client.clientCredentialsGrant(config, { scope: 'system/*.rs' });
  return { scope: tokens.scope, token_type: tokens.token_type, whoami: await whoami(tokens.access_token) };
}

// 2. jose: a hand-built RFC 7523bis assertion (typ
// client-authentication+jwt, aud = the issuer) posted with fetch.
async function joseAssertion() {
  const assertion = await new jose.SignJWT({})
    .setProtectedHeader({ alg: jwk.alg, kid: jwk.kid, typ: 'client-authentication+jwt' })
    .setIssuer(orgID)
    .setSubject(orgID)
    .setAudience(base)
    .setJti(randomUUID())
    .setIssuedAt()
    .setExpirationTime('2m')
    .sign(key);
  const res = await fetch(new URL('/oauth2/token', base), {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: assertion,
      scope: 'system/Observation.rs system/records.write',
    }),
  });
  const body = await res.json();
  if (!res.ok) throw new Error(`token: ${res.status} ${JSON.stringify(body)}`);
  // The same assertion again is a replay: invalid_client, with a
  // description and no WWW-Authenticate.
  const replay = await fetch(new URL('/oauth2/token', base), {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: assertion,
    }),
  });
  return {
    scope: body.scope,
    token_type: body.token_type,
    whoami: await whoami(body.access_token),
    replay: { status: replay.status, www_authenticate: replay.headers.get('www-authenticate'), body: await replay.json() },
  };
}

const out = { openid_client: await openidClient(), jose: await joseAssertion() };
process.stdout.write(JSON.stringify(out) + '\n');
