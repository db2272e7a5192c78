package store

import (
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluicepay/sluice/internal/payout"
)

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// addrText is how addresses are stored: lowercase 0x hex (no checksum work).
func addrText(a common.Address) string { return "0x" + hex.EncodeToString(a[:]) }

// hashText is how hashes are stored: lowercase 0x hex.
func hashText(h common.Hash) string { return "0x" + hex.EncodeToString(h[:]) }

// nullHash stores a missing hash as NULL.
func nullHash(h *common.Hash) sql.NullString {
	if h == nil {
		return sql.NullString{}
	}
	return sql.NullString{String: hashText(*h), Valid: true}
}

// nullBig stores a missing amount as NULL and a present one as decimal text.
func nullBig(v *big.Int) sql.NullString {
	if v == nil {
		return sql.NullString{}
	}
	return sql.NullString{String: v.String(), Valid: true}
}

func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

func nullUint(v *uint64) sql.NullInt64 {
	if v == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: int64(*v), Valid: true}
}

func nullBlock(n uint64) sql.NullInt64 { return sql.NullInt64{Int64: int64(n), Valid: n != 0} }

// parseBig reads a stored decimal amount.
func parseBig(s string) (*big.Int, error) {
	v, ok := new(big.Int).SetString(s, 10)
	if !ok {
		return nil, fmt.Errorf("stored amount %q is not a decimal integer", s)
	}
	return v, nil
}

// scanPayout reads one row of the dialect's payoutCols.
func scanPayout(s scanner) (*payout.Payout, error) {
	var (
		p                             payout.Payout
		status, to, sender, amount    string
		chainID                       int64
		extID, txHash, blockHash, fee sql.NullString
		nonce, block                  sql.NullInt64
		metadata                      string
		failureCode, priority, reason string
		feeCap                        sql.NullString
		created, updated              dbTime
		batchID, carrierID, chunkAmt  sql.NullString
		batchRow, logIndex            sql.NullInt64
		chunkPos, gasWeight           int64
	)
	err := s.Scan(&p.ID, &status, &p.Chain, &chainID, &p.Asset, &to, &amount, &extID,
		&metadata, &sender, &txHash, &nonce, &block, &blockHash, &fee, &p.ReceiptOK,
		&failureCode, &p.FailureMessage, &p.Version, &created, &updated,
		&priority, &reason, &p.ReasonDetail, &feeCap, &p.CancelRequested, &p.CancelMined,
		&batchID, &batchRow, &carrierID, &chunkPos, &gasWeight, &chunkAmt, &logIndex)
	if err != nil {
		return nil, err
	}
	p.BatchID, p.BatchRow, p.CarrierID = batchID.String, int(batchRow.Int64), carrierID.String
	p.ChunkPos, p.GasWeight = int(chunkPos), uint64(gasWeight)
	if chunkAmt.Valid {
		if p.ChunkAmount, err = parseBig(chunkAmt.String); err != nil {
			return nil, err
		}
	}
	if logIndex.Valid {
		li := uint(logIndex.Int64)
		p.LogIndex = &li
	}
	p.Priority, p.Reason = payout.Priority(priority), payout.Code(reason)
	if feeCap.Valid {
		if p.FeeCap, err = parseBig(feeCap.String); err != nil {
			return nil, err
		}
	}
	p.Status, p.ChainID, p.ExternalID = payout.Status(status), uint64(chainID), extID.String
	p.To, p.Sender = common.HexToAddress(to), common.HexToAddress(sender)
	p.FailureCode, p.CreatedAt, p.UpdatedAt = payout.Code(failureCode), created.t, updated.t
	if p.Amount, err = parseBig(amount); err != nil {
		return nil, err
	}
	if metadata != "" && metadata != "{}" && metadata != "null" {
		if err := json.Unmarshal([]byte(metadata), &p.Metadata); err != nil {
			return nil, fmt.Errorf("payout %s metadata: %w", p.ID, err)
		}
	}
	if txHash.Valid {
		h := common.HexToHash(txHash.String)
		p.TxHash = &h
	}
	if nonce.Valid {
		n := uint64(nonce.Int64)
		p.Nonce = &n
	}
	p.BlockNumber = uint64(block.Int64)
	if blockHash.Valid {
		h := common.HexToHash(blockHash.String)
		p.BlockHash = &h
	}
	if fee.Valid {
		if p.Fee, err = parseBig(fee.String); err != nil {
			return nil, err
		}
	}
	return &p, nil
}

// metadataText stores metadata as a JSON object; none is "{}".
func metadataText(m map[string]string) (string, error) {
	if len(m) == 0 {
		return "{}", nil
	}
	b, err := json.Marshal(m)
	return string(b), err
}

// stateArgs are updatePayout's arguments: the mutable columns, then the id
// and the version the row must still have.
func (d *dialect) stateArgs(p *payout.Payout, prevVersion int64) []any {
	return []any{string(p.Status), nullHash(p.TxHash), nullUint(p.Nonce), nullBlock(p.BlockNumber),
		nullHash(p.BlockHash), nullBig(p.Fee), p.ReceiptOK, string(p.FailureCode), p.FailureMessage,
		string(p.Reason), p.ReasonDetail, nullBig(p.FeeCap), p.CancelRequested, p.CancelMined,
		nullString(p.CarrierID), int64(p.ChunkPos), int64(p.GasWeight), nullBig(p.ChunkAmount), nullLogIndex(p.LogIndex),
		p.Version, d.time(p.UpdatedAt), p.ID, prevVersion}
}

func nullLogIndex(v *uint) sql.NullInt64 {
	if v == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: int64(*v), Valid: true}
}

// scanAttempt reads one row of the dialect's attemptCols.
func scanAttempt(s scanner) (*payout.Attempt, error) {
	var (
		a                   payout.Attempt
		chainID, nonce, gas int64
		sender, txHash      string
		maxFee, maxTip      string
		kind                string
		created             dbTime
	)
	err := s.Scan(&a.ID, &a.PayoutID, &chainID, &sender, &nonce, &txHash, &a.RawTx, &gas,
		&maxFee, &maxTip, &created, &kind)
	if err != nil {
		return nil, err
	}
	a.ChainID, a.Nonce, a.GasLimit = uint64(chainID), uint64(nonce), uint64(gas)
	a.Sender, a.TxHash, a.CreatedAt = common.HexToAddress(sender), common.HexToHash(txHash), created.t
	a.Kind = payout.AttemptKind(kind)
	if a.MaxFeePerGas, err = parseBig(maxFee); err != nil {
		return nil, err
	}
	if a.MaxPriorityFeePerGas, err = parseBig(maxTip); err != nil {
		return nil, err
	}
	return &a, nil
}

// collect scans every row with scan and closes rows.
func collect[T any](rows *sql.Rows, scan func(scanner) (T, error)) ([]T, error) {
	defer func() { _ = rows.Close() }()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
