// Package rpcpool owns the resilient pool of JSON-RPC upstreams of one
// chain: it checks each upstream's chain id, head and sync state, scores
// them on error rate, latency and block lag, fails a request over to the
// next upstream inside the same call, hedges slow reads, trips a circuit
// breaker per upstream, backs rate-limited upstreams off, and broadcasts
// signed transactions to every healthy upstream at once.
package rpcpool
