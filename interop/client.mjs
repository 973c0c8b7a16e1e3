// Third-party OAuth clients against a running healthgw, driven by
// interop_test.go. Environment:
//   HEALTHGW_URL   the gateway's base URL (its issuer)
//   ORG_ID         the organisation's ID (client_id)
//   ORG_KEY_FILE   the organisation's private signing JWK (with kid)
//   PATIENT        the patient whose records the FHIR client searches
//   OBSERVATION_ID a record (an Observation) the organisation may read
//   CONDITION_ID   a record (a Condition) no consent lets it read
// Prints one JSON object: for each OAuth client, the token response's
// scope, what GET /v1/whoami answered and consent-gated FHIR reads; for
// the FHIR client (fhir-kit-client), what it found in the
// CapabilityStatement, its search (followed by next links) and reads.
import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import * as client from 'openid-client';
import * as jose from 'jose';
import { Client } from 'fhir-kit-client';

const base = process.env.HEALTHGW_URL;
const orgID = process.env.ORG_ID;
const jwk = JSON.parse(readFileSync(process.env.ORG_KEY_FILE, 'utf8'));
const key = await jose.importJWK(jwk, jwk.alg);

const patient = process.env.PATIENT;
const observationID = process.env.OBSERVATION_ID;
const conditionID = process.env.CONDITION_ID;

// fhirRead reads one record by ID through the FHIR endpoint with fetch.
async function fhirRead(accessToken, type, id) {
  const res = await fetch(new URL(`/fhir/${type}/${id}?purpose=TREAT`, base), {
    headers: { Authorization: `Bearer ${accessToken}`, Accept: 'application/fhir+json' },
  });
  const body = await res.json();
  return { status: res.status, resourceType: body.resourceType, id: body.id };
}

// fhirKit drives fhir-kit-client: the CapabilityStatement, a search of the
// patient's Observations followed page by page with nextPage, a read of
// every one found, and a read of a record without consent (an error with
// an OperationOutcome).
async function fhirKit(accessToken) {
  // The purpose of use goes in a header, so that reads by ID (and
  // fullUrls) need no query.
  const fc = new Client({
    baseUrl: new URL('/fhir', base).toString(),
    bearerToken: accessToken,
    customHeaders: { 'X-Purpose-Of-Use': 'TREAT' },
  });
  const cs = await fc.capabilityStatement();
  const rest = cs.rest[0];
  const oauth = rest.security.extension.find((e) => e.url.endsWith('/oauth-uris'));
  const out = {
    fhirVersion: cs.fhirVersion,
    resources: rest.resource.map((r) => r.type),
    oauth_token: oauth.extension.find((e) => e.url === 'token').valueUri,
    pages: 0,
    search_ids: [],
    read_ids: [],
  };
  let bundle = await fc.search({ resourceType: 'Observation', searchParams: { patient, _count: 2 } });
  while (bundle) {
    out.pages++;
    if (out.pages > 10) throw new Error('the next links do not end');
    for (const e of bundle.entry ?? []) out.search_ids.push(e.resource.id);
    bundle = await fc.nextPage({ bundle });
  }
  for (const id of out.search_ids) {
    const r = await fc.read({ resourceType: 'Observation', id });
    out.read_ids.push(r.id);
  }
  try {
    await fc.read({ resourceType: 'Condition', id: conditionID });
    out.denied = { status: 200 };
  } catch (err) {
    out.denied = { status: err.response?.status, resourceType: err.response?.data?.resourceType };
    out.denied_outcome = err.response?.data?.issue?.[0]?.code;
  }
  return out;
}

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
  return {
    scope: tokens.scope,
    token_type: tokens.token_type,
    whoami: await whoami(tokens.access_token),
    fhir_read: await fhirRead(tokens.access_token, 'Observation', observationID),
    token: tokens.access_token,
  };
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
    observation: await fhirRead(body.access_token, 'Observation', observationID),
    condition: await fhirRead(body.access_token, 'Condition', conditionID),
    replay: { status: replay.status, www_authenticate: replay.headers.get('www-authenticate'), body: await replay.json() },
  };
}

const oc = await openidClient();
const fk = await fhirKit(oc.token);
delete oc.token;
const out = { openid_client: oc, jose: await joseAssertion(), fhir_kit: fk };
process.stdout.write(JSON.stringify(out) + '\n');
