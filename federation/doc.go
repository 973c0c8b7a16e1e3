// Package federation lets a hospital read, through its own gateway, the
// records another member of the consortium holds (docs/design/federation.md).
//
// Three pieces, each small:
//
//   - a request token (Signer, Verifier): a compact JWS (EdDSA) the
//     reader's home gateway signs with its ledger node key, saying
//     "gateway G, acting for org O, asks gateway H for this method and
//     target", valid for a short time and once. The holder's gateway
//     checks it against the ledger registry: G is a registered gateway,
//     the key is G's, and G is O's home gateway;
//   - sealed answers (Seal, Open): the holder signs its answer with its
//     own node key, bound to the request token's ID, and encrypts it to
//     the requesting gateway's registered X25519 sealing key (JWE,
//     ECDH-ES+A256KW, A256GCM), so no proxy or load balancer between the
//     two gateways sees the record, and the reader's gateway knows which
//     holder answered which request;
//   - the reader side (Service): the consent-aware locator (List: the
//     caller's readable records across the consortium, answered by the
//     custodian's gateway from the record registrations and consents
//     sealed to it, so no holder is asked) and the federated read (Read:
//     resolve the holder's home gateway from the registry; local if it
//     is this one, else one hop).
//
// The holder decides exactly as for a direct read (access.Service), under
// the reader org's identity, and logs access.decided; this package never
// decides on consent itself.
package federation
