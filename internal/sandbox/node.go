package sandbox

import (
	"context"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"strconv"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/rawdb"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/eth"
	"github.com/ethereum/go-ethereum/eth/ethconfig"
	"github.com/ethereum/go-ethereum/eth/filters"
	"github.com/ethereum/go-ethereum/log"
	"github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/params"
	"github.com/ethereum/go-ethereum/rpc"
)

// Pool and RPC limits sized for one hot wallet pushing hundreds of payouts
// a second: geth's defaults (16 executable slots per account, 1,000 calls
// per batch) would drop or refuse most of them.
const (
	poolAccountSlots  = 20_000
	poolGlobalSlots   = 40_000
	poolAccountQueue  = 5_000
	poolGlobalQueue   = 10_000
	rpcBatchLimit     = 5_000
	rpcBatchMaxBytes  = 100 << 20
	hotWalletBalanceE = 1_000_000 // ETH
)

// HotWalletBalance is the hot wallet's balance at genesis, in wei.
func HotWalletBalance() *big.Int {
	return new(big.Int).Mul(big.NewInt(hotWalletBalanceE), big.NewInt(params.Ether))
}

// devChainConfig pins the dev chain to Ethereum mainnet's rules (Osaka with
// the BPO2 blob schedule) from genesis. go-ethereum's own dev config,
// params.AllDevChainProtocolChanges, also enables unreleased forks (in
// v1.17.10 "Bogota", whose state-gas metering makes an ERC-20 transfer to a
// new holder cost ~150k gas instead of ~50k), and it changes between
// releases, which would change the genesis hash and strand every journal.
var devChainConfig = &params.ChainConfig{
	ChainID:                 big.NewInt(ChainID),
	HomesteadBlock:          big.NewInt(0),
	EIP150Block:             big.NewInt(0),
	EIP155Block:             big.NewInt(0),
	EIP158Block:             big.NewInt(0),
	ByzantiumBlock:          big.NewInt(0),
	ConstantinopleBlock:     big.NewInt(0),
	PetersburgBlock:         big.NewInt(0),
	IstanbulBlock:           big.NewInt(0),
	MuirGlacierBlock:        big.NewInt(0),
	BerlinBlock:             big.NewInt(0),
	LondonBlock:             big.NewInt(0),
	ArrowGlacierBlock:       big.NewInt(0),
	GrayGlacierBlock:        big.NewInt(0),
	TerminalTotalDifficulty: big.NewInt(0),
	ShanghaiTime:            new(uint64),
	CancunTime:              new(uint64),
	PragueTime:              new(uint64),
	OsakaTime:               new(uint64),
	BPO1Time:                new(uint64),
	BPO2Time:                new(uint64),
	BlobScheduleConfig: &params.BlobScheduleConfig{
		Cancun: params.DefaultCancunBlobConfig,
		Prague: params.DefaultPragueBlobConfig,
		BPO1:   params.DefaultBPO1BlobConfig,
		BPO2:   params.DefaultBPO2BlobConfig,
	},
}

// genesisFor builds the dev chain's genesis. It is a pure function of its
// arguments, which is what lets a restart rebuild the same genesis and replay
// the journal on top of it. The alloc is pinned too: the system contracts
// Prague's block processing calls, the CREATE2 factory found at the same
// address on nearly every EVM chain, and the hot wallet.
//
// Chains created since batch payouts carry Sluice's batch executor too
// (executor: its runtime code, nil for none), at BatchExecutorAddress: it
// has no constructor and no storage, so its runtime code is all a
// deployment would leave. The code is recorded in the data dir, so a
// restart rebuilds the same genesis after the executor's sources change.
func genesisFor(hot common.Address, gasLimit uint64, executor []byte) *core.Genesis {
	system := func(code []byte) types.Account {
		return types.Account{Nonce: 1, Code: code, Balance: new(big.Int)}
	}
	g := &core.Genesis{
		Config:   devChainConfig,
		GasLimit: gasLimit,
		Alloc: types.GenesisAlloc{
			params.BeaconRootsAddress:          system(params.BeaconRootsCode),
			params.HistoryStorageAddress:       system(params.HistoryStorageCode),
			params.WithdrawalQueueAddress:      system(params.WithdrawalQueueCode),
			params.ConsolidationQueueAddress:   system(params.ConsolidationQueueCode),
			params.DeterministicFactoryAddress: system(params.DeterministicFactoryCode),
			hot:                                {Balance: HotWalletBalance()},
		},
	}
	if len(executor) > 0 {
		g.Alloc[BatchExecutorAddress] = system(executor)
	}
	return g
}

// BatchExecutorAddress is where a dev chain holds Sluice's EIP-7702 batch
// executor (contracts/src/SluiceBatchExecutor.sol) from genesis.
var BatchExecutorAddress = common.HexToAddress("0x5100000000000000000000000000000000007702")

// newStack assembles an in-memory geth node running the eth service, as
// go-ethereum's ethclient/simulated does, but serving HTTP JSON-RPC and with
// the eth service reachable so blocks can be replayed into it. The node is
// not started.
func newStack(cfg *Config, genesis *core.Genesis) (*node.Node, *eth.Ethereum, error) {
	nodeConf := node.DefaultConfig
	nodeConf.DataDir = "" // in memory: the journal is the persistent copy
	nodeConf.IPCPath = ""
	nodeConf.P2P = p2p.Config{NoDiscovery: true}
	nodeConf.Logger = log.NewLogger(warnOnly{cfg.Logger.With("component", "geth").Handler()})
	if err := setHTTP(&nodeConf, cfg.RPCAddr); err != nil {
		return nil, nil, err
	}
	stack, err := node.New(&nodeConf)
	if err != nil {
		return nil, nil, fmt.Errorf("sandbox: new node: %w", err)
	}
	backend, err := eth.New(stack, ethConfig(cfg, genesis))
	if err != nil {
		stack.Close()
		return nil, nil, fmt.Errorf("sandbox: new eth service: %w", err)
	}
	// eth_getLogs and the filter calls live in a separate service.
	filterSystem := filters.NewFilterSystem(backend.APIBackend, filters.Config{})
	stack.RegisterAPIs([]rpc.API{{Namespace: "eth", Service: filters.NewFilterAPI(filterSystem)}})
	return stack, backend, nil
}

func ethConfig(cfg *Config, genesis *core.Genesis) *ethconfig.Config {
	c := ethconfig.Defaults
	c.Genesis = genesis
	c.SyncMode = ethconfig.FullSync
	c.Miner.GasCeil = cfg.GasLimit
	c.LogNoHistory = true // no background log indexer on a shared 2-core box
	// In memory, the hash scheme without snapshots replays the journal about
	// a quarter faster than the path scheme (measured: BenchmarkRestart).
	c.StateScheme = rawdb.HashScheme
	c.SnapshotCache = 0
	// The prefetcher runs each imported block's transactions a second time
	// to warm the state caches ahead of processing; in memory there is
	// nothing to warm, and it took 5% of a busy dev chain's CPU.
	c.NoPrefetch = true
	c.NoPruning = cfg.Archive
	c.TxPool.NoLocals = true
	c.TxPool.Journal = ""
	c.TxPool.AccountSlots = poolAccountSlots
	c.TxPool.GlobalSlots = poolGlobalSlots
	c.TxPool.AccountQueue = poolAccountQueue
	c.TxPool.GlobalQueue = poolGlobalQueue
	return &c
}

// setHTTP configures the HTTP JSON-RPC server on addr ("" for none).
func setHTTP(c *node.Config, addr string) error {
	if addr == "" {
		return nil
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("sandbox: Config.RPCAddr %q: %w", addr, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return fmt.Errorf("sandbox: Config.RPCAddr %q: bad port: %w", addr, err)
	}
	if host == "" {
		host = "0.0.0.0"
	}
	c.HTTPHost, c.HTTPPort = host, int(port)
	c.HTTPModules = []string{"eth", "net", "web3"}
	// The chain holds no unlocked account, so any Host header may call it;
	// this lets containers and LAN clients use the sandbox by name.
	c.HTTPVirtualHosts = []string{"*"}
	c.BatchRequestLimit = rpcBatchLimit
	c.BatchResponseMaxSize = rpcBatchMaxBytes
	return nil
}

// warnOnly passes geth's own warnings and errors on and drops the rest: at
// info level geth logs every imported block.
type warnOnly struct{ slog.Handler }

// Enabled reports whether a record at level l is passed on.
func (h warnOnly) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn && h.Handler.Enabled(ctx, l)
}

// WithAttrs keeps the level filter on derived handlers.
func (h warnOnly) WithAttrs(as []slog.Attr) slog.Handler { return warnOnly{h.Handler.WithAttrs(as)} }

// WithGroup keeps the level filter on derived handlers.
func (h warnOnly) WithGroup(name string) slog.Handler { return warnOnly{h.Handler.WithGroup(name)} }
