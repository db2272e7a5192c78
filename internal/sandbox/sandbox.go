// Package sandbox owns Sluice's embedded Ethereum dev chain: an in-process
// go-ethereum node driven by go-ethereum's simulated beacon (as
// ethclient/simulated builds it), serving real JSON-RPC over HTTP, with a
// funded hot wallet and the SUSD test token. It follows mainnet's rules
// (Osaka) under chain id 1337.
//
// # Persistence
//
// The node keeps its database in memory. A chain started with a DataDir
// survives restarts through DATA_DIR/chain:
//
//   - blocks.journal: every block the chain makes (and every Fork) is
//     appended and fsynced before Commit returns;
//   - meta.json: chain id, genesis hash and gas limit, hot wallet, SUSD;
//   - LOCK: held while a process runs the chain.
//
// Start rebuilds the same genesis, replays the journal into the node before
// serving it, and continues from the journal's head. A torn last record (a
// crash during an append) is cut off. Anything else that keeps the chain
// from coming back exactly, such as a damaged journal, another hot wallet, a
// different genesis or a block that does not import, makes Start refuse with
// a *DataDirError: a data dir that had payouts is never silently replaced
// with a new chain.
//
// Limits: transactions still in the pool at a stop are not kept (senders
// rebroadcast them, as against any node); a block made just before a crash
// may be lost, which a client sees as a one-block reorg; restart time grows
// with the journal (see BENCHMARKS.md).
package sandbox

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/eth"
	"github.com/ethereum/go-ethereum/eth/catalyst"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/params"
	"github.com/prometheus/client_golang/prometheus"
)

// ChainID is the dev chain's chain id.
const ChainID = 1337

// DefaultGasLimit is the block gas limit used when Config.GasLimit is 0.
const DefaultGasLimit = 60_000_000

// Config configures a dev chain. The zero value of every field but
// HotWalletKey is usable.
type Config struct {
	// DataDir holds the chain under DATA_DIR/chain so it survives restarts.
	// Empty means an in-memory chain that is gone on Close.
	DataDir string
	// MustExist refuses to create a new chain in DataDir, e.g. because the
	// caller knows payouts were made on the chain that should be there.
	MustExist bool
	// RPCAddr is the host:port of the HTTP JSON-RPC server (eth, net and
	// web3). Port 0 picks a free port; RPCURL reports it. Empty serves no
	// HTTP: only Client works.
	RPCAddr string
	// BlockTime makes a block every BlockTime. 0 makes blocks only when
	// Commit is called.
	BlockTime time.Duration
	// HotWalletKey is the hot wallet's key. Required. The wallet holds
	// 1,000,000 ETH at genesis and deploys SUSD.
	HotWalletKey *ecdsa.PrivateKey
	// GasLimit is the block gas limit. Default DefaultGasLimit. A restored
	// chain keeps its genesis gas limit; blocks then move towards this one.
	GasLimit uint64
	// Archive keeps every block's state, as a node with --gcmode=archive
	// does, so that balances at any block can be read (sluice reconcile of
	// an old range). Without it, the state of about the last 128 blocks is
	// kept, as on a full node.
	Archive bool
	// Logger receives the chain's logs. Default: discarded.
	Logger *slog.Logger
	// Registerer, if set, gets the chain's Prometheus metrics.
	Registerer prometheus.Registerer
}

func (c *Config) setDefaults() error {
	if c.HotWalletKey == nil {
		return errors.New("sandbox: Config.HotWalletKey is required")
	}
	if c.BlockTime < 0 {
		return fmt.Errorf("sandbox: Config.BlockTime must not be negative, got %s", c.BlockTime)
	}
	if c.GasLimit == 0 {
		c.GasLimit = DefaultGasLimit
	}
	if c.GasLimit < params.MinGasLimit {
		return fmt.Errorf("sandbox: Config.GasLimit must be at least %d, got %d", params.MinGasLimit, c.GasLimit)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Chain is a running dev chain.
type Chain struct {
	cfg    Config
	log    *slog.Logger
	stack  *node.Node
	eth    *eth.Ethereum
	client *ethclient.Client
	hot    common.Address
	susd   common.Address
	// executor is the batch executor in genesis (zero: a chain created
	// before there was one).
	executor common.Address
	dir      *dataDir // nil for an in-memory chain
	metrics  *metrics

	// mu serialises block production, forks and journal appends, so the
	// journal holds blocks in the order the chain made them.
	mu      sync.Mutex
	beacon  *catalyst.SimulatedBeacon
	journal *journal // nil for an in-memory chain
	failed  error    // set when a block could not be journalled: no more blocks
	closed  bool
	started bool // the node runs, so closing it stops the eth service

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// RPCURL returns the HTTP JSON-RPC URL with the port actually bound, or ""
// when Config.RPCAddr was empty.
func (c *Chain) RPCURL() string {
	if c.cfg.RPCAddr == "" {
		return ""
	}
	return c.stack.HTTPEndpoint()
}

// ChainID returns the chain id, ChainID.
func (c *Chain) ChainID() uint64 { return ChainID }

// Client returns an in-process client of the chain. It is closed by Close.
func (c *Chain) Client() *ethclient.Client { return c.client }

// HotWallet returns the hot wallet's address.
func (c *Chain) HotWallet() common.Address { return c.hot }

// SUSD returns the address of the SUSD token.
func (c *Chain) SUSD() common.Address { return c.susd }

// BatchExecutor returns the address of the EIP-7702 batch executor the hot
// wallet may delegate to, or the zero address on a chain created before
// the dev chain had one.
func (c *Chain) BatchExecutor() common.Address { return c.executor }

// Start starts a dev chain: it restores the chain in cfg.DataDir, or creates
// one there (deploying SUSD) when there is none, then serves it. ctx bounds
// the start only. An unrestorable data dir is an error matching ErrDataDir.
func Start(ctx context.Context, cfg Config) (*Chain, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	c := &Chain{
		cfg:  cfg,
		log:  cfg.Logger.With("component", "sandbox"),
		hot:  crypto.PubkeyToAddress(cfg.HotWalletKey.PublicKey),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	c.susd = crypto.CreateAddress(c.hot, 0)
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	c.metrics = m
	if err := c.start(ctx); err != nil {
		c.shutdown()
		m.unregister(cfg.Registerer)
		return nil, err
	}
	go c.produce()
	return c, nil
}

// start brings the chain up to the point where it can make blocks.
func (c *Chain) start(ctx context.Context) error {
	begun := time.Now()
	genesis, err := c.openDataDir()
	if err != nil {
		return err
	}
	c.stack, c.eth, err = newStack(&c.cfg, genesis)
	if err != nil {
		return err
	}
	replayed, err := c.restore(ctx)
	if err != nil {
		return err
	}
	if err := c.stack.Start(); err != nil {
		return fmt.Errorf("sandbox: start node (rpc %s): %w", c.cfg.RPCAddr, err)
	}
	c.started = true
	c.client = ethclient.NewClient(c.stack.Attach())
	if c.beacon, err = catalyst.NewSimulatedBeacon(0, common.Address{}, c.eth); err != nil {
		return fmt.Errorf("sandbox: start simulated beacon: %w", err)
	}
	if err := c.ensureSUSD(ctx); err != nil {
		return err
	}
	head := c.eth.BlockChain().CurrentBlock()
	c.metrics.head.Set(float64(head.Number.Uint64()))
	c.log.Info("dev chain started", "rpc_url", c.RPCURL(), "chain_id", ChainID,
		"head_number", head.Number.Uint64(), "head_hash", head.Hash(), "replayed_records", replayed,
		"hot_wallet", c.hot, "susd", c.susd, "data_dir", c.cfg.DataDir, "took", time.Since(begun))
	return nil
}

// Close stops block production and the node, and syncs the journal. The
// chain cannot be used afterwards. Close is safe to call more than once.
func (c *Chain) Close() error {
	c.closeOnce.Do(func() {
		close(c.stop)
		<-c.done
		c.closeErr = c.shutdown()
		c.metrics.unregister(c.cfg.Registerer)
		c.log.Info("dev chain stopped", "data_dir", c.cfg.DataDir)
	})
	return c.closeErr
}

// shutdown releases whatever start acquired, in reverse order.
func (c *Chain) shutdown() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	var errs []error
	if c.client != nil {
		c.client.Close()
	}
	if c.beacon != nil {
		errs = append(errs, c.beacon.Stop())
	}
	if c.eth != nil && !c.started {
		// node.Close stops only started services, and the blockchain's
		// background indexer must not outlive the database: geth exits the
		// process when a write to a closed database fails.
		c.eth.TxPool().Close()
		c.eth.BlockChain().Stop()
	}
	if c.stack != nil {
		errs = append(errs, c.stack.Close())
	}
	if c.journal != nil {
		errs = append(errs, c.journal.close())
	}
	if c.dir != nil {
		errs = append(errs, c.dir.close())
	}
	return errors.Join(errs...)
}
