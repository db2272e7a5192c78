// Package evm is Sluice's go-ethereum glue: building and signing payout
// transactions, a JSON-RPC client that batches calls, and the one table that
// classifies node errors for the sender and the upstream pool.
package evm
