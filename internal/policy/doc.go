// Package policy decides whether a payout may go: hard denies first (deny
// and sanctions lists), then the policy document's rules in order (the
// first whose CEL condition holds wins), then the default, deny.
//
// Conditions see facts Sluice computes (see Facts): the amount in base
// units as an exact "units" value (amount > units("5000000000000000000"),
// or compared with an int), the amount in whole tokens as a double for
// convenience only (amount_decimal; doubles round, so limits that matter
// compare base units), the asset, chain, destination, allow-list
// membership, how long since Sluice first paid the destination, velocity
// over sliding windows (velocity.sum("destination", "24h"),
// velocity.count("api_key", "1h"); scopes wallet, asset, destination,
// api_key), the share of the hot wallet's balance when known, and the
// initiating API key.
package policy
