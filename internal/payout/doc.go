// Package payout owns Sluice's domain: the Payout and its state machine,
// attempts and events, money as integers, stable error codes, and the ports
// (Store, Chain, Signer) that adapters implement. It imports only the standard
// library and go-ethereum's small value types (common.Address, common.Hash).
package payout
