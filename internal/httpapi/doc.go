// Package httpapi owns Sluice's REST API: routing, API-key authentication,
// idempotency, request decoding, RFC 9457 problem errors, request ids,
// health and readiness, and HTTP metrics. It turns requests into calls on
// payout.Store and the answers into JSON; it holds no business rules of its
// own beyond the wire format.
//
// # Errors
//
// Every error is an application/problem+json document with a stable
// snake_case code (package payout's Code) and the request's id. One table
// (codeInfo) maps codes to HTTP statuses. Malformed bodies (bad JSON,
// unknown fields, trailing data) are 400; a body that is well-formed JSON
// but holds invalid values is 422 Unprocessable Content, with every wrong
// field listed in errors[] at once (a JSON pointer, a code, a detail). The
// top-level code of a 422 is the field's own code when exactly one field is
// wrong (e.g. invalid_amount) and invalid_request when several are. An
// error the API does not know is 500 internal_error: its cause is logged
// with the request id, never sent.
//
// # Idempotency
//
// POST /v1/payouts requires an Idempotency-Key header (1 to 255 printable
// ASCII characters). Keys are scoped per API key. The request's fingerprint
// is the SHA-256 of its method, path and body. The payout, its event and the
// idempotency record (status and response body) are stored in one
// Store.CreatePayout call, so a response is recorded if and only if the
// payout exists. Replaying the key with the same body answers the stored
// status and body with Idempotent-Replayed: true; with a different body it
// is 422 idempotency_key_reused. While a request with the same key is still
// being handled by this process the answer is 409 idempotency_key_in_use
// with Retry-After. Across several instances a concurrent duplicate reaches
// the database, whose unique (scope, key) makes it a replay of the winner.
//
// Requests that fail validation or decoding store nothing, not even the
// idempotency record, so a client can fix the body and retry with the same
// key; but a key that already has a record is answered from that record
// (replay or idempotency_key_reused) before the new body is judged. A
// duplicate external_id (409) is not recorded either: retrying gives the
// same 409. Records are kept at least IdempotencyKeyTTL (7 days: a client
// may retry after a long outage of its own); see Server.PruneIdempotency.
package httpapi
