package evm

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/ethereum/go-ethereum/rpc"
)

// methodError is a JSON-RPC error answer.
type methodError struct{ code int }

func (e methodError) Error() string  { return fmt.Sprintf("json-rpc error %d", e.code) }
func (e methodError) ErrorCode() int { return e.code }

// headerlessNode has no eth_getHeaderByNumber; it counts calls by method.
type headerlessNode struct{ calls map[string]int }

func (n *headerlessNode) CallContext(_ context.Context, result any, method string, args ...any) error {
	n.calls[method]++
	if method == "eth_getHeaderByNumber" {
		return methodError{-32601}
	}
	if full, _ := args[1].(bool); full {
		return fmt.Errorf("asked for full transactions")
	}
	return json.Unmarshal(fmt.Appendf(nil, `{"hash":"0x%064s","transactions":[]}`, args[0].(string)[2:]), result)
}

func (n *headerlessNode) BatchCallContext(context.Context, []rpc.BatchElem) error { return nil }

// A node without eth_getHeaderByNumber is asked for the block instead, and
// only once for the header method.
func TestBlockHashWithoutHeaderMethod(t *testing.T) {
	node := &headerlessNode{calls: map[string]int{}}
	c := NewClient(node, "test", nil)
	for _, number := range []uint64{7, 8, 9} {
		h, err := c.BlockHash(context.Background(), number)
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("0x%064x", number); h.Hex() != want {
			t.Fatalf("block %d: hash %s, want %s", number, h.Hex(), want)
		}
	}
	if node.calls["eth_getHeaderByNumber"] != 1 || node.calls["eth_getBlockByNumber"] != 3 {
		t.Fatalf("calls %v: want the header method tried once, then blocks", node.calls)
	}
}
