package payout

import (
	"fmt"
	"strings"

	"github.com/ethereum/go-ethereum/common"
)

// ParseAddress parses a destination address. It must be 0x followed by 40
// hex digits; a mixed-case address must carry a correct EIP-55 checksum; the
// zero address is refused because coins sent there are burned.
func ParseAddress(field, s string) (common.Address, error) {
	if !strings.HasPrefix(s, "0x") || len(s) != 42 || !common.IsHexAddress(s) {
		return common.Address{}, &FieldError{Field: field, Code: CodeInvalidAddress,
			Message: fmt.Sprintf("%s %q is not an address (0x followed by 40 hex digits)", field, truncate(s, 64))}
	}
	a := common.HexToAddress(s)
	body := s[2:]
	if body != strings.ToLower(body) && body != strings.ToUpper(body) && a.Hex() != s {
		return common.Address{}, &FieldError{Field: field, Code: CodeInvalidChecksum,
			Message: fmt.Sprintf("%s %q has a wrong EIP-55 checksum (did you mean %s?)", field, s, a.Hex())}
	}
	if a == (common.Address{}) {
		return common.Address{}, &FieldError{Field: field, Code: CodeZeroAddress,
			Message: fmt.Sprintf("%s is the zero address; coins sent there are lost", field)}
	}
	return a, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
