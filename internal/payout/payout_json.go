package payout

import (
	"encoding/json"
	"math/big"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/ethereum/go-ethereum/common"
)

// AppendJSON appends the payout's API form (MarshalJSON's bytes) to b.
//
// Every payout is encoded four or five times (each event stores it, and
// the API answers with it), so this writes the fields directly instead of
// through encoding/json's reflection over wirePayout. The output is byte
// for byte what json.Marshal(wirePayout) gives: the same field order,
// string escaping, sorted metadata keys and RFC 3339 times;
// FuzzAppendJSONMatchesReflection holds it to that.
func (p *Payout) AppendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, p.ID)
	b = append(b, `,"object":"payout","status":`...)
	b = appendJSONString(b, string(p.Status))
	b = append(b, `,"chain":`...)
	b = appendJSONString(b, p.Chain)
	b = append(b, `,"chain_id":`...)
	b = strconv.AppendUint(b, p.ChainID, 10)
	b = append(b, `,"asset":`...)
	b = appendJSONString(b, p.Asset)
	b = append(b, `,"to":`...)
	b = appendAddress(b, p.To)
	b = append(b, `,"amount":`...)
	b = appendBigString(b, p.Amount)
	b = append(b, `,"external_id":`...)
	b = appendOptString(b, p.ExternalID)
	b = append(b, `,"metadata":`...)
	b = appendMetadata(b, p.Metadata)
	b = append(b, `,"from":`...)
	b = appendAddress(b, p.Sender)
	b = append(b, `,"priority":`...)
	if p.Priority == "" {
		b = appendJSONString(b, string(PriorityStandard))
	} else {
		b = appendJSONString(b, string(p.Priority))
	}
	b = appendCodeAndWords(b, `,"status_reason":`, `,"status_detail":`, p.Reason, p.ReasonDetail)
	b = append(b, `,"fee_cap":`...)
	b = appendOptBig(b, p.FeeCap)
	b = append(b, `,"cancel_requested":`...)
	b = strconv.AppendBool(b, p.CancelRequested)
	b = append(b, `,"tx_hash":`...)
	if p.TxHash != nil {
		b = append(b, '"')
		b = append(b, p.TxHash.Hex()...)
		b = append(b, '"')
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"nonce":`...)
	b = appendOptUint(b, p.Nonce != nil, func() uint64 { return *p.Nonce })
	b = append(b, `,"block_number":`...)
	b = appendOptUint(b, p.BlockNumber != 0, func() uint64 { return p.BlockNumber })
	b = append(b, `,"fee":`...)
	b = appendOptBig(b, p.Fee)
	b = appendCodeAndWords(b, `,"failure_code":`, `,"failure_message":`, p.FailureCode, p.FailureMessage)
	b = append(b, `,"batch_id":`...)
	b = appendOptString(b, p.BatchID)
	b = append(b, `,"log_index":`...)
	b = appendOptUint(b, p.LogIndex != nil, func() uint64 { return uint64(*p.LogIndex) })
	b = append(b, `,"created_at":`...)
	b = appendTime(b, p.CreatedAt)
	b = append(b, `,"updated_at":`...)
	b = appendTime(b, p.UpdatedAt)
	return append(b, '}')
}

// appendAddress appends an address checksummed, as a JSON string.
func appendAddress(b []byte, a common.Address) []byte {
	b = append(b, '"')
	b = append(b, a.Hex()...)
	return append(b, '"')
}

// appendBigString appends an amount as a decimal JSON string (nil as
// big.Int's String writes it, "<nil>", escaped as encoding/json does).
func appendBigString(b []byte, x *big.Int) []byte {
	if x == nil {
		return append(b, `"\u003cnil\u003e"`...)
	}
	b = append(b, '"')
	b = x.Append(b, 10)
	return append(b, '"')
}

// appendCodeAndWords appends a code and the words that go with it under
// their two keys, both null when the code is "" (a status reason with its
// detail, a failure code with its message).
func appendCodeAndWords(b []byte, codeKey, wordsKey string, code Code, words string) []byte {
	b = append(b, codeKey...)
	if code == "" {
		b = append(b, "null"...)
		return append(append(b, wordsKey...), "null"...)
	}
	b = appendJSONString(b, string(code))
	return appendJSONString(append(b, wordsKey...), words)
}

// appendOptBig appends x as a decimal JSON string, or null when it is nil.
func appendOptBig(b []byte, x *big.Int) []byte {
	if x == nil {
		return append(b, "null"...)
	}
	return appendBigString(b, x)
}

// appendOptUint appends value() when set, else null.
func appendOptUint(b []byte, set bool, value func() uint64) []byte {
	if !set {
		return append(b, "null"...)
	}
	return strconv.AppendUint(b, value(), 10)
}

// appendOptString appends s as a JSON string, or null when it is "".
func appendOptString(b []byte, s string) []byte {
	if s == "" {
		return append(b, "null"...)
	}
	return appendJSONString(b, s)
}

// appendMetadata appends the map with its keys sorted, as json.Marshal
// does; a nil map is {}.
func appendMetadata(b []byte, m map[string]string) []byte {
	b = append(b, '{')
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		b = appendJSONString(b, m[k])
	}
	return append(b, '}')
}

// appendTime appends t in UTC as time.Time's MarshalJSON writes it.
func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// appendJSONString appends s quoted. Printable ASCII without the
// characters encoding/json escapes is copied as is; anything else goes
// through encoding/json, so escaping (HTML characters, control
// characters, invalid UTF-8, U+2028) is exactly its own.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
