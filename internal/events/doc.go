// Package events delivers the outbox to webhook endpoints.
//
// A Dispatcher holds a lease in the database, so that one instance among
// several sharing a database dispatches at a time. It reads the outbox
// from a durable cursor, fans each batch of events out into deliveries
// (one per endpoint and event) in the transaction that moves the cursor,
// and sends them signed the Standard Webhooks v1 way. A delivery is
// recorded only after its attempt ended, so a crash between sending and
// recording sends it again: delivery is at least once.
//
// Retries follow Schedule (about three days), with jitter; 2xx succeeds,
// 410 Gone disables the endpoint at once, and an endpoint with no success
// for DisableAfter is disabled with a webhook_endpoint.disabled event.
package events
