package fees

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/big"
	"time"

	"github.com/sluicepay/sluice/internal/payout"
)

// DefaultMinTip is Config.MinTip's default: 0.001 gwei, the least tip a geth
// miner with default settings (miner.gasprice) includes.
const DefaultMinTip = 1_000_000

// Config configures an Oracle for one chain.
type Config struct {
	// Chain names the chain in metrics and logs. Required.
	Chain string
	// Window is how many recent blocks of eth_feeHistory a quote reads.
	// Default 20.
	Window uint64
	// MinTip is the least tip quoted, in wei, also when the window's blocks
	// are empty. Default DefaultMinTip.
	MinTip *big.Int
	// Levels configures each priority; a priority left out gets its
	// defaults (see Level).
	Levels map[Priority]Level
	// Caps are the chain's fee limits. Default: none.
	Caps Caps
	// HeadTTL is how long a quote's head is trusted before Quote checks
	// the latest header again. Default 1s. Negative: never; the caller
	// reports new heads with SetHead.
	HeadTTL time.Duration
	// Logger gets the oracle's logs. Default: discarded.
	Logger *slog.Logger
	// Metrics records quotes, cache use and caps. Default: unregistered.
	Metrics *Metrics
}

func (c *Config) setDefaults() {
	if c.Window == 0 {
		c.Window = 20
	}
	if c.MinTip == nil {
		c.MinTip = big.NewInt(DefaultMinTip)
	}
	levels := defaultLevels()
	maps.Copy(levels, c.Levels)
	c.Levels = levels
	if c.HeadTTL == 0 {
		c.HeadTTL = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Metrics == nil {
		c.Metrics = NewMetrics(nil)
	}
}

func (c *Config) validate() error {
	if c.Chain == "" {
		return errors.New("fees: Config.Chain is required")
	}
	if c.Window > 1024 {
		return fmt.Errorf("fees: Config.Window must be at most 1024 blocks (geth's limit), got %d", c.Window)
	}
	if c.MinTip.Sign() < 0 {
		return fmt.Errorf("fees: Config.MinTip must not be negative, got %s", c.MinTip)
	}
	for p, l := range c.Levels {
		if _, err := payout.ParsePriority(string(p)); err != nil || p == "" {
			return fmt.Errorf("fees: Config.Levels: unknown priority %q", p)
		}
		if err := l.validate(p); err != nil {
			return err
		}
	}
	return c.Caps.validate()
}
