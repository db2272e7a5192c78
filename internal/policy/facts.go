package policy

import (
	"context"
	"fmt"
	"math/big"
	"reflect"
	"time"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/interpreter"
	"github.com/ethereum/go-ethereum/common"

	"github.com/sluicepay/sluice/internal/payout"
)

// Input is the payout to decide and who asks for it.
type Input struct {
	Chain      string
	Asset      string
	Decimals   uint8 // the asset's, for amount_decimal
	Sender     common.Address
	To         common.Address
	Amount     *big.Int
	Metadata   map[string]string
	APIKeyID   string
	APIKeyName string
	// APIKeyLabels are the initiating key's labels (set when it was made).
	APIKeyLabels map[string]string
	Now          time.Time
	// PayoutID, when set, names a payout already recorded (decided
	// again): it is left out of its own velocity windows.
	PayoutID string
}

// Facts are what the conditions see, recorded with the decision.
type Facts struct {
	Amount                string                  `json:"amount"`         // base units
	AmountDecimal         float64                 `json:"amount_decimal"` // whole tokens; rounded, for convenience
	Asset                 string                  `json:"asset"`
	Chain                 string                  `json:"chain"`
	Destination           string                  `json:"destination"`
	AllowListed           bool                    `json:"allow_listed"`
	Lists                 []string                `json:"lists"`                   // every list holding the destination
	DestinationAgeSeconds int64                   `json:"destination_age_seconds"` // since first paid; -1: never
	BalanceShare          float64                 `json:"balance_share"`           // amount / hot wallet balance; -1: unknown
	APIKeyID              string                  `json:"api_key_id"`
	APIKeyName            string                  `json:"api_key_name"`
	APIKeyLabels          map[string]string       `json:"api_key_labels"`
	Metadata              map[string]string       `json:"metadata,omitempty"`
	Velocity              map[string]VelocityFact `json:"velocity,omitempty"` // "scope/window"

	amount *big.Int
	hits   []hit
	vel    map[string]Window
}

// VelocityFact is a window's sum (base units) and count, as recorded.
type VelocityFact struct {
	Sum   string `json:"sum"`
	Count int64  `json:"count"`
}

type hit struct {
	name            string
	sanctions, deny bool
}

// Sources are where facts come from; the store implements them.
type Sources interface {
	ListsHolding(ctx context.Context, addr common.Address) ([]payout.ListHit, error)
	FirstPaid(ctx context.Context, addr common.Address) (time.Time, bool, error)
	PayoutHistory(ctx context.Context, since time.Time) ([]payout.HistoryItem, error)
}

// BalanceFunc reports a hot wallet's balance of an asset, when known.
type BalanceFunc func(ctx context.Context, chain string, wallet common.Address, asset string) (*big.Int, bool)

// decimal returns v / 10^dec as a float64 (rounded).
func decimal(v *big.Int, dec uint8) float64 {
	f, _ := new(big.Rat).SetFrac(v, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(dec)), nil)).Float64()
	return f
}

// activation serves the facts to CEL without a map per evaluation.
type activation struct {
	f        *Facts
	amount   units
	lists    ref.Val
	metadata ref.Val
	labels   ref.Val
	velocity *velocityVal
}

func (f *Facts) activation() *activation {
	md := f.Metadata
	if md == nil {
		md = map[string]string{}
	}
	labels := f.APIKeyLabels
	if labels == nil {
		labels = map[string]string{}
	}
	return &activation{f: f, amount: units{f.amount}, lists: types.NewStringList(types.DefaultTypeAdapter, f.Lists),
		metadata: types.NewStringStringMap(types.DefaultTypeAdapter, md),
		labels:   types.NewStringStringMap(types.DefaultTypeAdapter, labels), velocity: &velocityVal{w: f.vel}}
}

func (a *activation) ResolveName(name string) (any, bool) {
	f := a.f
	switch name {
	case "amount":
		return a.amount, true
	case "amount_decimal":
		return types.Double(f.AmountDecimal), true
	case "asset":
		return types.String(f.Asset), true
	case "chain":
		return types.String(f.Chain), true
	case "destination":
		return types.String(f.Destination), true
	case "allow_listed":
		return types.Bool(f.AllowListed), true
	case "lists":
		return a.lists, true
	case "destination_age_seconds":
		return types.Int(f.DestinationAgeSeconds), true
	case "balance_share":
		return types.Double(f.BalanceShare), true
	case "api_key_id":
		return types.String(f.APIKeyID), true
	case "api_key_name":
		return types.String(f.APIKeyName), true
	case "api_key_labels":
		return a.labels, true
	case "metadata":
		return a.metadata, true
	case "velocity":
		return a.velocity, true
	}
	return nil, false
}

func (a *activation) Parent() interpreter.Activation { return nil }

// velocityVal is the CEL value behind velocity.sum and velocity.count.
type velocityVal struct{ w map[string]Window }

func (v *velocityVal) get(scope, window ref.Val, sum bool) ref.Val {
	w, ok := v.w[string(scope.(types.String))+"/"+string(window.(types.String))]
	if !ok {
		return types.NewErr("velocity %s/%s was not computed", scope, window)
	}
	if sum {
		return units{w.Sum}
	}
	return types.Int(w.Count)
}

func (v *velocityVal) ConvertToNative(t reflect.Type) (any, error) {
	return nil, fmt.Errorf("velocity: cannot convert to %v", t)
}
func (v *velocityVal) ConvertToType(t ref.Type) ref.Val {
	return types.NewErr("velocity: cannot convert to %s", t.TypeName())
}
func (v *velocityVal) Equal(o ref.Val) ref.Val { return types.Bool(o == ref.Val(v)) }
func (v *velocityVal) Type() ref.Type          { return velocityType }
func (v *velocityVal) Value() any              { return v.w }
