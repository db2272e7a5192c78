package rpcpool

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ethereum/go-ethereum/common/hexutil"
)

// errBadAnswer is an answer that cannot be right: the upstream is on
// another chain, or far behind, since its last health check. The request
// moves to the next upstream.
var errBadAnswer = errors.New("implausible answer")

// answerChecks verify the answers that tell what the health check looks
// at, so that an upstream that fell behind or moved to another chain
// since its last check is caught by the first request it would mislead.
var answerChecks = map[string]func(p *Pool, u *upstream, raw json.RawMessage) error{
	"eth_blockNumber": checkHeadAnswer,
	"eth_chainId":     checkChainAnswer,
}

// checkHeadAnswer takes a head answered to eth_blockNumber as the
// upstream's head: a higher one raises the best head, one more than
// MaxLag behind it marks the upstream lagging and is not passed on.
func checkHeadAnswer(p *Pool, u *upstream, raw json.RawMessage) error {
	var head hexutil.Uint64
	if err := json.Unmarshal(raw, &head); err != nil {
		return fmt.Errorf("upstream %s: eth_blockNumber: %w: %s", u.name, errBadAnswer, raw)
	}
	if uint64(head) > u.head.Load() {
		u.head.Store(uint64(head))
		p.raiseBest(uint64(head))
	}
	if best := p.bestHead.Load(); uint64(head)+p.cfg.MaxLag < best {
		u.head.Store(uint64(head))
		return fmt.Errorf("upstream %s: %w: head %d, %d blocks behind the best", u.name, errBadAnswer, head, best-uint64(head))
	}
	return nil
}

// checkChainAnswer refuses an upstream that answers eth_chainId with
// another chain's id, as its health check would.
func checkChainAnswer(p *Pool, u *upstream, raw json.RawMessage) error {
	var id hexutil.Uint64
	if err := json.Unmarshal(raw, &id); err != nil {
		return fmt.Errorf("upstream %s: eth_chainId: %w: %s", u.name, errBadAnswer, raw)
	}
	if uint64(id) != p.cfg.ChainID {
		p.refuse(u, uint64(id))
		return fmt.Errorf("upstream %s: %w: chain id %d", u.name, errBadAnswer, id)
	}
	return nil
}
