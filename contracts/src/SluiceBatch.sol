// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title Sluice batch contract (deployed mode)
/// @notice For chains without EIP-7702: a hot wallet calls this deployed
/// contract to pay many recipients in one transaction.
///
/// Security:
/// - It never holds funds. payNative forwards exactly msg.value and reverts
///   when the recipients' sum differs; payToken moves tokens straight from the
///   caller to each recipient with transferFrom, so they never pass through
///   the contract.
/// - It spends only the caller's own allowance (`from` is always
///   msg.sender). The hot wallet approves exactly the batch's total in the
///   transaction just before, so the allowance is 0 again afterwards.
/// - No owner, no storage, no receive or fallback: coins sent to it by
///   mistake are refused.
///
/// Recipients are packed as in SluiceBatchExecutor: 32 bytes each, a 20-byte
/// address followed by a 12-byte (uint96) amount. A recipient that fails
/// reverts the whole call with RecipientFailed(index).
contract SluiceBatch {
    /// The recipient at `index` (0-based) rejected its payment: a contract
    /// that refused the coin, or a token transfer that reverted or returned
    /// false (also for want of balance or allowance). Also used for a zero
    /// address in payNative (which would burn the coin); payToken leaves
    /// that to the token.
    error RecipientFailed(uint256 index);
    /// msg.value is not the sum of the recipients' amounts.
    error ValueMismatch(uint256 value, uint256 total);
    /// The packed recipients are empty or not a multiple of 32 bytes long.
    error BadPackedLength(uint256 length);
    /// The token address has no code, so a call to it would "succeed"
    /// without moving anything.
    error NotAContract(address token);

    /// Pays each recipient `amount` wei out of msg.value, which must be the
    /// exact sum of the amounts.
    function payNative(bytes calldata packed) external payable {
        _checkLength(packed.length);
        uint256 total;
        bool outOfValue;
        assembly ("memory-safe") {
            let start := packed.offset
            let end := add(start, packed.length)
            for { let p := start } lt(p, end) { p := add(p, 32) } {
                let word := calldataload(p)
                let to := shr(96, word)
                let amount := and(word, 0xffffffffffffffffffffffff)
                // Cannot overflow: fewer than 2^32 amounts below 2^96 each.
                total := add(total, amount)
                // All gas is forwarded so that smart-contract wallets can
                // receive; a recipient that re-enters can only pay with its
                // own msg.value, and the simulation catches gas-hungry ones.
                if iszero(and(call(gas(), to, amount, 0, 0, 0, 0), iszero(iszero(to)))) {
                    // Running out of msg.value is the caller's mistake, not
                    // the recipient's: report it as such below.
                    if and(lt(selfbalance(), amount), iszero(iszero(to))) {
                        outOfValue := 1
                        break
                    }
                    mstore(0x00, 0x12608d3e) // RecipientFailed(uint256)
                    mstore(0x20, shr(5, sub(p, start)))
                    revert(0x1c, 0x24)
                }
            }
        }
        // Exactly msg.value must go out, so nothing stays behind.
        if (outOfValue || total != msg.value) revert ValueMismatch(msg.value, _total(packed));
    }

    /// Pays each recipient `amount` base units of `token` with
    /// token.transferFrom(msg.sender, to, amount).
    function payToken(address token, bytes calldata packed) external {
        _checkLength(packed.length);
        // Checked once: a call to an address without code succeeds and
        // returns nothing, which would read as a USDT-style success below.
        if (token.code.length == 0) revert NotAContract(token);
        assembly {
            // One buffer for every call, at fixed addresses so that each
            // store is a constant push: transferFrom(address,address,uint256)
            // is selector ‖ from ‖ to ‖ amount, 0x64 bytes from 0x1c; only
            // `to` and `amount` change. It overwrites the free memory
            // pointer at 0x40 and the zero slot at 0x60, restored below.
            let fmp := mload(0x40)
            mstore(0x20, caller())
            mstore(0x40, 0) // the high 12 bytes of the `to` word stay zero
            let start := packed.offset
            let end := add(start, packed.length)
            for { let p := start } lt(p, end) { p := add(p, 32) } {
                // The return value lands on the selector's word, so the
                // selector is written again for every call.
                mstore(0x00, 0x23b872dd) // transferFrom(address,address,uint256)
                let word := calldataload(p)
                // address ‖ amount, stored at 0x4c: the address ends at 0x60
                // where the `to` word ends; the amount word is then stored
                // over the amount's stray bytes at 0x60.
                mstore(0x4c, word)
                mstore(0x60, and(word, 0xffffffffffffffffffffffff))
                let ok := call(gas(), token, 0, 0x1c, 0x64, 0x00, 0x20)
                // Success is a call that did not revert and returned a
                // first word that is exactly true, or that returned nothing
                // at all (USDT-style tokens; the token has code, checked
                // above). A return shorter than a word cannot read as true:
                // the selector's last byte (0xdd) stays in the word.
                if iszero(and(eq(mload(0x00), 1), ok)) {
                    if iszero(and(ok, iszero(returndatasize()))) {
                        mstore(0x00, 0x12608d3e) // RecipientFailed(uint256)
                        mstore(0x20, shr(5, sub(p, start)))
                        revert(0x1c, 0x24)
                    }
                }
            }
            mstore(0x40, fmp)
            mstore(0x60, 0)
        }
    }

    function _checkLength(uint256 length) private pure {
        if (length == 0 || length % 32 != 0) revert BadPackedLength(length);
    }

    /// The sum of the amounts; only computed to explain a revert.
    function _total(bytes calldata packed) private pure returns (uint256 total) {
        for (uint256 p = 0; p < packed.length; p += 32) {
            total += uint256(uint96(bytes12(packed[p + 20:p + 32])));
        }
    }
}
