package rpcpool

import "strings"

// proxyReads are the methods the endpoint forwards with Pool.Call: reads
// of chain state that need no key of the node and no state kept on one
// node between requests.
var proxyReads = map[string]bool{
	"eth_chainId":                             true,
	"eth_blockNumber":                         true,
	"eth_getBalance":                          true,
	"eth_getTransactionCount":                 true,
	"eth_call":                                true,
	"eth_estimateGas":                         true,
	"eth_createAccessList":                    true,
	"eth_gasPrice":                            true,
	"eth_maxPriorityFeePerGas":                true,
	"eth_blobBaseFee":                         true,
	"eth_feeHistory":                          true,
	"eth_getBlockByNumber":                    true,
	"eth_getBlockByHash":                      true,
	"eth_getHeaderByNumber":                   true,
	"eth_getHeaderByHash":                     true,
	"eth_getBlockTransactionCountByNumber":    true,
	"eth_getBlockTransactionCountByHash":      true,
	"eth_getTransactionByHash":                true,
	"eth_getTransactionByBlockHashAndIndex":   true,
	"eth_getTransactionByBlockNumberAndIndex": true,
	"eth_getRawTransactionByHash":             true,
	"eth_getTransactionReceipt":               true,
	"eth_getBlockReceipts":                    true,
	"eth_getUncleCountByBlockHash":            true,
	"eth_getUncleCountByBlockNumber":          true,
	"eth_getLogs":                             true,
	"eth_getCode":                             true,
	"eth_getStorageAt":                        true,
	"eth_getProof":                            true,
	"eth_syncing":                             true,
	"eth_protocolVersion":                     true,
	"net_version":                             true,
	"net_listening":                           true,
	"web3_clientVersion":                      true,
	"web3_sha3":                               true,
}

// methodSendRaw is the one write the endpoint takes: a transaction the
// client signed itself, broadcast to every healthy upstream.
const methodSendRaw = "eth_sendRawTransaction"

// refusal says why method is not forwarded, naming it, for the JSON-RPC
// error's message.
func refusal(method string) string {
	switch {
	case method == "eth_sendTransaction" || strings.HasPrefix(method, "eth_sign") || method == "eth_accounts":
		return "method " + method + " is not allowed: it would use the node's own keys; sign locally and use eth_sendRawTransaction"
	case strings.Contains(method, "Filter") || strings.HasSuffix(method, "subscribe"):
		return "method " + method + " is not allowed: filters and subscriptions live on one node, and this endpoint fails over between nodes; use eth_getLogs"
	}
	for _, ns := range []string{"personal_", "admin_", "debug_", "miner_", "txpool_", "engine_", "clique_"} {
		if strings.HasPrefix(method, ns) {
			return "method " + method + " is not allowed: the " + strings.TrimSuffix(ns, "_") + " namespace is not exposed"
		}
	}
	return "method " + method + " is not allowed by this endpoint"
}
