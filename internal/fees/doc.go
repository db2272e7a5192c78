// Package fees owns what a payout pays for gas and when it pays more: the
// EIP-1559 fee oracle (with a legacy gas-price path for chains without
// EIP-1559), per-chain fee caps, and the rules for replacing a transaction
// that is not mined (geth's replacement bump and an escalating schedule).
//
// # Quotes
//
// An Oracle reads eth_feeHistory over a window of recent blocks and turns it
// into one Quote per Priority:
//
//	tip    = median over the window's non-empty blocks of the priority's
//	         reward percentile, at least Config.MinTip
//	anchor = max(next block's base fee, median base fee of the window)
//	maxFee = anchor × 1.125^k + tip
//
// where k is the priority's headroom: a transaction with that max fee stays
// includable through k consecutive full blocks, each of which may raise the
// base fee by 12.5%. The anchor follows the base-fee trend but does not
// trust a dip: after a spike the base fee often returns to where it was, and
// the max fee is only a ceiling (a transaction pays base fee + tip), so a
// generous anchor costs inclusion nothing. 1.125^k is computed in integers
// (× 9 / 8, rounded up, k times); no float ever touches an amount.
//
// On a chain without EIP-1559 (its headers carry no base fee) the quote is
// eth_gasPrice raised by the priority's LegacyPremium percent, rounded up,
// at least MinTip, in both Fees fields: the sender signs it as the gas
// price, and Bump and Check work unchanged (geth applies the same +10%
// rule to a legacy gas price).
//
// Quotes are cached per block: any number of Quote calls for the same head
// make one set of RPC calls (one header and one eth_feeHistory). The cache
// learns of a new head from SetHead (the sender's head tracker) or, failing
// that, by checking the latest header at most once per Config.HeadTTL.
//
// # Caps and replacement
//
// Caps bound max fee per gas and the fee one payout may cost (gas limit ×
// max fee). Check reports a quote over its cap as an *OverCapError with a
// stable reason, so the payout waits visibly instead of overpaying.
//
// Bump raises both fee fields of a stuck transaction to at least geth's
// replacement threshold (old × 1.10 rounded up, and at least old + 1 wei)
// and to the current quote, never above the cap; when the cap forbids the
// minimum bump it returns a *CapReachedError (ErrCapReached) carrying the
// fees that would be needed, so the sender can mark the payout stuck.
// Blob transactions (geth requires +100%) are out of scope: Sluice sends
// none. Schedule says when a replacement is due.
package fees
