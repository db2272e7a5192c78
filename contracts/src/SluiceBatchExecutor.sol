// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title Sluice batch executor (EIP-7702 mode)
/// @notice A hot wallet (an EOA) delegates its code to this contract with an
/// EIP-7702 authorization, then sends a transaction to itself that calls
/// payNative or payToken. The coins and tokens leave the wallet itself: a
/// token's Transfer events name the hot wallet as `from`, and no allowance
/// ever exists.
///
/// Security:
/// - Only the wallet itself may pay: every entry point reverts unless
///   msg.sender == address(this), so nobody else can make a delegated wallet
///   pay, and a recipient contract cannot re-enter to pay itself again.
/// - No storage: under EIP-7702 the storage belongs to the wallet, so the
///   executor keeps none. No constructor and no immutables either: the
///   runtime code is position-independent, so it may also be placed at an
///   address directly (a dev chain's genesis does).
/// - The executor's own address holds nothing: it accepts no coins (only a
///   delegating wallet does) and its pay functions revert when called on it.
///
/// Recipients are packed, 32 bytes each: a 20-byte address followed by a
/// 12-byte (uint96) amount, which costs less calldata than an ABI array.
/// A recipient that fails reverts the whole call with RecipientFailed(index)
/// so that a planner can simulate, drop that recipient and try again.
contract SluiceBatchExecutor {
    /// The recipient at `index` (0-based) rejected its payment: a contract
    /// that refused the coin, or a token transfer that reverted or returned
    /// false. Also used for a zero address in payNative (which would burn
    /// the coin); payToken leaves that to the token.
    error RecipientFailed(uint256 index);
    /// The wallet does not hold enough of the coin to pay the recipient at
    /// `index` (and every one after it).
    error InsufficientBalance(uint256 index);
    /// The caller is not the delegated wallet itself.
    error NotSelf();
    /// Coins were sent to the executor's own address, where they would be
    /// stuck, rather than to a wallet delegating to it.
    error NotDelegated();
    /// The packed recipients are empty or not a multiple of 32 bytes long.
    error BadPackedLength(uint256 length);
    /// The token address has no code, so a call to it would "succeed"
    /// without moving anything.
    error NotAContract(address token);

    /// A delegated wallet must keep receiving coins (top-ups, refunds); the
    /// executor's own address must not, or they would be stuck there. Under
    /// delegation this code runs as the wallet, whose own code is the 23-byte
    /// designator 0xef0100 ‖ executor; anywhere else it is this contract's
    /// far longer runtime code.
    receive() external payable {
        if (address(this).code.length != 23) revert NotDelegated();
    }

    /// Pays each recipient `amount` wei of the wallet's native coin.
    function payNative(bytes calldata packed) external {
        _check(packed.length);
        assembly ("memory-safe") {
            let start := packed.offset
            let end := add(start, packed.length)
            for { let p := start } lt(p, end) { p := add(p, 32) } {
                let word := calldataload(p)
                let to := shr(96, word)
                let amount := and(word, 0xffffffffffffffffffffffff)
                // All gas is forwarded so that smart-contract wallets can
                // receive; the only-self check stops them from re-entering,
                // and the planner's simulation catches gas-hungry ones. No
                // return data is copied, whatever the recipient returns.
                if iszero(and(call(gas(), to, amount, 0, 0, 0, 0), iszero(iszero(to)))) {
                    let index := shr(5, sub(p, start))
                    // Blame the wallet, not the recipient, when the coin
                    // ran out: dropping recipients would not help then.
                    if and(lt(selfbalance(), amount), iszero(iszero(to))) {
                        mstore(0x00, 0x92665351) // InsufficientBalance(uint256)
                        mstore(0x20, index)
                        revert(0x1c, 0x24)
                    }
                    mstore(0x00, 0x12608d3e) // RecipientFailed(uint256)
                    mstore(0x20, index)
                    revert(0x1c, 0x24)
                }
            }
        }
    }

    /// Pays each recipient `amount` base units of `token` with
    /// token.transfer, from the wallet's own balance.
    function payToken(address token, bytes calldata packed) external {
        _check(packed.length);
        // Checked once: a call to an address without code succeeds and
        // returns nothing, which would read as a USDT-style success below.
        if (token.code.length == 0) revert NotAContract(token);
        assembly {
            // One buffer for every call, at fixed addresses so that each
            // store is a constant push: transfer(address,uint256) is
            // selector ‖ to ‖ amount, 0x44 bytes from 0x1c. It overwrites
            // the free memory pointer at 0x40, restored below.
            let fmp := mload(0x40)
            mstore(0x20, 0) // the high 12 bytes of the `to` word stay zero
            let start := packed.offset
            let end := add(start, packed.length)
            for { let p := start } lt(p, end) { p := add(p, 32) } {
                // The return value lands on the selector's word, so the
                // selector is written again for every call.
                mstore(0x00, 0xa9059cbb) // transfer(address,uint256)
                let word := calldataload(p)
                // address ‖ amount, stored at 0x2c: the address ends at 0x40
                // where the `to` word ends; the amount word is then stored
                // over the amount's stray bytes at 0x40.
                mstore(0x2c, word)
                mstore(0x40, and(word, 0xffffffffffffffffffffffff))
                let ok := call(gas(), token, 0, 0x1c, 0x44, 0x00, 0x20)
                // Success is a call that did not revert and returned a
                // first word that is exactly true, or that returned nothing
                // at all (USDT-style tokens; the token has code, checked
                // above). A return shorter than a word cannot read as true:
                // the selector's last byte (0xbb) stays in the word.
                if iszero(and(eq(mload(0x00), 1), ok)) {
                    if iszero(and(ok, iszero(returndatasize()))) {
                        mstore(0x00, 0x12608d3e) // RecipientFailed(uint256)
                        mstore(0x20, shr(5, sub(p, start)))
                        revert(0x1c, 0x24)
                    }
                }
            }
            mstore(0x40, fmp)
        }
    }

    /// Reverts unless the caller is the delegated wallet itself and the
    /// packed recipients are well formed.
    function _check(uint256 length) private view {
        if (msg.sender != address(this)) revert NotSelf();
        if (length == 0 || length % 32 != 0) revert BadPackedLength(length);
    }
}
