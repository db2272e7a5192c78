package httpapi

import (
	"encoding/json"
	"net/http"
	"sort"

	"github.com/sluicepay/sluice/internal/payout"
)

// chainView is a configured chain as GET /v1/chains shows it.
type chainView struct {
	Object        string      `json:"object"`
	Name          string      `json:"name"`
	ChainID       uint64      `json:"chain_id"`
	Confirmations uint64      `json:"confirmations"`
	HotWallet     string      `json:"hot_wallet"`
	HotWallets    []string    `json:"hot_wallets"`
	Assets        []assetView `json:"assets"`
}

// assetView is an asset; Address is null for the chain's native coin.
type assetView struct {
	Symbol   string  `json:"symbol"`
	Address  *string `json:"address"`
	Decimals uint8   `json:"decimals"`
}

type chainList struct {
	Object  string      `json:"object"`
	Data    []chainView `json:"data"`
	HasMore bool        `json:"has_more"`
	URL     string      `json:"url"`
}

// chainsBody renders the catalog once, sorted by name and symbol.
func chainsBody(c *payout.Catalog) ([]byte, error) {
	list := chainList{Object: "list", Data: []chainView{}, URL: "/v1/chains"}
	for _, ch := range c.Chains {
		v := chainView{Object: "chain", Name: ch.Name, ChainID: ch.ChainID, Confirmations: ch.Confirmations,
			HotWallet: ch.HotWallet.Hex(), Assets: []assetView{}}
		for _, w := range ch.Wallets() {
			v.HotWallets = append(v.HotWallets, w.Hex())
		}
		for _, a := range ch.Assets {
			av := assetView{Symbol: a.Symbol, Decimals: a.Decimals}
			if a.Token != nil {
				addr := a.Token.Hex()
				av.Address = &addr
			}
			v.Assets = append(v.Assets, av)
		}
		sort.Slice(v.Assets, func(i, j int) bool { return v.Assets[i].Symbol < v.Assets[j].Symbol })
		list.Data = append(list.Data, v)
	}
	sort.Slice(list.Data, func(i, j int) bool { return list.Data[i].Name < list.Data[j].Name })
	b, err := json.Marshal(list)
	return append(b, '\n'), err
}

// listChains handles GET /v1/chains.
func (s *Server) listChains(w http.ResponseWriter, r *http.Request) {
	writeBody(w, "application/json", http.StatusOK, s.chains)
}
