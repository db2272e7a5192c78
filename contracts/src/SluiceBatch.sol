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
    /// recipient address.
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
        assembly ("memory-safe") {
            // One buffer for every call: transferFrom(address,address,uint256)
            // is selector ‖ from ‖ to ‖ amount, 0x64 bytes from buf+0x1c;
            // only `to` and `amount` change. The return value lands in
            // scratch space at 0x00.
            let buf := mload(0x40)
            mstore(buf, 0x23b872dd) // transferFrom(address,address,uint256)
            mstore(add(buf, 0x20), caller())
            let start := packed.offset
            let end := add(start, packed.length)
            for { let p := start } lt(p, end) { p := add(p, 32) } {
                let word := calldataload(p)
                mstore(add(buf, 0x40), shr(96, word))
                mstore(add(buf, 0x60), and(word, 0xffffffffffffffffffffffff))
                let ok := call(gas(), token, 0, add(buf, 0x1c), 0x64, 0x00, 0x20)
                // Success is a call that did not revert and either returned
                // nothing (USDT-style tokens; the token has code, checked
                // above) or returned at least a word that is exactly true.
                // A short return leaves 0x00 stale, so it counts as failure.
                if iszero(
                    and(ok, or(iszero(returndatasize()), and(gt(returndatasize(), 31), eq(mload(0x00), 1))))
                ) {
                    mstore(0x00, 0x12608d3e) // RecipientFailed(uint256)
                    mstore(0x20, shr(5, sub(p, start)))
                    revert(0x1c, 0x24)
                }
            }
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
