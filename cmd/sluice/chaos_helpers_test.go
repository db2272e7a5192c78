package main

import (
	"context"
	"crypto/ecdsa"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/big"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"
	_ "modernc.org/sqlite"

	"github.com/sluicepay/sluice/internal/httpapi"
	"github.com/sluicepay/sluice/internal/rpcpool/rpcfault"
	"github.com/sluicepay/sluice/internal/sandbox"
)

// chaosRig is the world of TestChaos around the engine: the dev chain (in
// this process, so the test can reorganise it), toxiproxy in front of it,
// the funded keys of the competing traffic and the engine's config.
type chaosRig struct {
	t        *testing.T
	chain    *sandbox.Chain
	hot      *ecdsa.PrivateKey
	rivals   []*ecdsa.PrivateKey // keys of the competing traffic
	faults   *faultRig
	dir      string
	cfgPath  string
	dbPath   string
	apiKey   string
	preNonce uint64 // the hot wallet's nonce when the engine first starts
	opened   uint64 // a block after the rivals' funding, before the engine starts: the books open here
}

// newChaosRig starts the chain, funds the rivals from the hot wallet (the
// only transactions the test sends from it, all before the engine starts)
// and writes the engine's config: two upstreams through toxiproxy and the
// node itself as a fallback.
func newChaosRig(t *testing.T) *chaosRig {
	t.Helper()
	dir := t.TempDir()
	pass := "chaos-" + randomHex(8)
	passFile := filepath.Join(dir, "passphrase")
	if err := os.WriteFile(passFile, []byte(pass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	hotKey, _ := crypto.GenerateKey()
	ksPath := writeLightKeystore(t, filepath.Join(dir, "keystore"), hotKey, pass)
	chain, err := sandbox.Start(context.Background(), sandbox.Config{
		RPCAddr: "127.0.0.1:0", BlockTime: chaosBlockTime, GasLimit: chaosGasLimit, HotWalletKey: hotKey,
		Archive: true, // the reconciliation at the end reads balances from before the run
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { chain.Close() })
	r := &chaosRig{t: t, chain: chain, hot: hotKey, dir: dir, dbPath: filepath.Join(dir, "sluice.db"),
		apiKey: "sk_test_chaos_" + randomHex(8)}
	r.fundRivals(2)
	r.faults = newFaultRig(t, chain.RPCURL(), 2, true)
	r.cfgPath = filepath.Join(dir, "sluice.yaml")
	cfg := fmt.Sprintf(`database: sqlite:%s
data_dir: %s
log_level: info
engine:
  lease_ttl: 3s
chains:
  - name: sandbox
    chain_id: %d
    confirmations: %d
    upstreams:
      - url: %s
      - url: %s
      - url: %s
        role: fallback
    native_symbol: ETH
    native_decimals: 18
    tokens:
      - symbol: SUSD
        address: "%s"
        decimals: 6
    hot_wallets:
      - address: "%s"
        signer:
          type: keystore
          keystore: %s
          passphrase_file: %s
api_keys:
  - name: chaos
    sha256: %x
rate_limit: {per_second: 10000, burst: 20000}
`, r.dbPath, dir, chain.ChainID(), chaosConfirmations, r.faults.URL(0), r.faults.URL(1), chain.RPCURL(),
		chain.SUSD().Hex(), crypto.PubkeyToAddress(hotKey.PublicKey).Hex(), ksPath, passFile, httpapi.HashAPIKey(r.apiKey))
	if err := os.WriteFile(r.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return r
}

// writeLightKeystore writes key to a keystore v3 file encrypted with
// go-ethereum's light scrypt parameters. The engine decrypts its keystore
// at every start, and with the standard parameters (256 MiB, about a second
// on a busy 2-core machine) the restarts after 20 kills would take much of
// the test's time.
func writeLightKeystore(t *testing.T, dir string, key *ecdsa.PrivateKey, pass string) string {
	t.Helper()
	k := &keystore.Key{Address: crypto.PubkeyToAddress(key.PublicKey), PrivateKey: key}
	copy(k.Id[:], common.FromHex(randomHex(16)))
	blob, err := keystore.EncryptKey(k, pass, keystore.LightScryptN, keystore.LightScryptP)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "UTC--chaos--"+strings.ToLower(k.Address.Hex()[2:]))
	if err := os.WriteFile(path, blob, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// fundRivals gives n new keys 1,000 ETH each from the hot wallet and waits
// until they are mined.
func (r *chaosRig) fundRivals(n int) {
	ctx := context.Background()
	cl := r.chain.Client()
	hot := crypto.PubkeyToAddress(r.hot.PublicKey)
	nonce, err := cl.PendingNonceAt(ctx, hot)
	if err != nil {
		r.t.Fatal(err)
	}
	for range n {
		k, _ := crypto.GenerateKey()
		r.rivals = append(r.rivals, k)
		to := crypto.PubkeyToAddress(k.PublicKey)
		if err := r.send(r.hot, nonce, &to, new(big.Int).Mul(big.NewInt(1000), big.NewInt(params.Ether)), nil, 21_000, big.NewInt(params.GWei)); err != nil {
			r.t.Fatalf("fund rival %s: %v", to.Hex(), err)
		}
		nonce++
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		latest, err := cl.NonceAt(ctx, hot, nil)
		if err == nil && latest == nonce {
			r.preNonce = latest
			if r.opened, err = cl.BlockNumber(ctx); err != nil {
				r.t.Fatal(err)
			}
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("funding of the rivals not mined: hot wallet nonce %d, want %d (%v)", latest, nonce, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// send signs and sends an EIP-1559 transaction with a max fee far above
// any base fee the test reaches (500 gwei: a node refuses a transaction
// whose max fee × gas is over 1 ETH).
func (r *chaosRig) send(key *ecdsa.PrivateKey, nonce uint64, to *common.Address, value *big.Int, data []byte, gas uint64, tip *big.Int) error {
	tx := types.NewTx(&types.DynamicFeeTx{
		ChainID: big.NewInt(sandbox.ChainID), Nonce: nonce, To: to, Value: value, Data: data,
		GasTipCap: tip, GasFeeCap: big.NewInt(500 * params.GWei), Gas: gas,
	})
	signed, err := types.SignTx(tx, types.LatestSignerForChainID(big.NewInt(sandbox.ChainID)), key)
	if err != nil {
		r.t.Fatal(err)
	}
	return r.chain.Client().SendTransaction(context.Background(), signed)
}

// rivalPayload is the calldata of a competing transaction: 24,450 non-zero
// bytes cost 999,000 gas (EIP-7623's floor, 21,000 + 40 a byte), so ten of
// them leave 10,000 gas of a 10,000,000-gas block: not room enough for one
// more transfer. A few keys keep blocks full without flooding the node with
// small transactions.
var rivalPayload = func() []byte {
	b := make([]byte, 24_450)
	for i := range b {
		b[i] = byte(1 + i%255)
	}
	return b
}()

const rivalGas = 999_000

// surge keeps every block full with competing transactions for d, then
// stops: each rival key keeps 7 of them waiting, so demand stays above the
// block gas limit and the base fee climbs 12.5% a block. Their tip starts at
// 5 gwei and rises 15% a second, a bidding war that stays ahead of the
// engine's tip (a median over the last blocks' tips, which lags): the
// engine's transactions wait, its queue stalls and the base fee overtakes
// their max fee. It returns the transactions sent.
func (r *chaosRig) surge(ctx context.Context, d time.Duration) int {
	cl := r.chain.Client()
	sink := common.HexToAddress("0x00000000000000000000000000000000005111e0")
	next := make([]uint64, len(r.rivals))
	for i, k := range r.rivals {
		next[i], _ = cl.PendingNonceAt(ctx, crypto.PubkeyToAddress(k.PublicKey))
	}
	sent, errs := 0, 0
	began := time.Now()
	end := time.After(d)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return sent
		case <-end:
			return sent
		case <-tick.C:
		}
		tip := new(big.Float).Mul(big.NewFloat(5*params.GWei), big.NewFloat(math.Pow(1.15, time.Since(began).Seconds())))
		tipWei, _ := tip.Int(nil)
		for i, k := range r.rivals {
			from := crypto.PubkeyToAddress(k.PublicKey)
			latest, err := cl.NonceAt(ctx, from, nil)
			if err != nil {
				continue
			}
			next[i] = max(next[i], latest) // a reorg may have given some back: they are in the pool again
			for next[i]-latest < 7 {
				if err := r.send(k, next[i], &sink, new(big.Int), rivalPayload, rivalGas, tipWei); err != nil {
					if errs++; errs <= 3 {
						r.t.Logf("competing transaction %s/%d: %v", from.Hex(), next[i], err)
					}
					next[i], _ = cl.PendingNonceAt(ctx, from)
					break
				}
				next[i]++
				sent++
			}
		}
	}
}

// baseFee is the latest block's base fee, in wei.
func (r *chaosRig) baseFee() *big.Int {
	h, err := r.chain.Client().HeaderByNumber(context.Background(), nil)
	if err != nil {
		return new(big.Int)
	}
	return h.BaseFee
}

// flapFaults puts a random fault (or none) on each upstream every 2-5 s: a
// TCP one (2 s latency, connection reset, refused) or a JSON-RPC one (429,
// 500, a node stuck at block 0). It runs until ctx ends, then clears them;
// it returns how many faults were set.
func (r *chaosRig) flapFaults(ctx context.Context, seed uint64) int {
	choices := []fault{noFault, noFault, {tcp: faultLatency}, {tcp: faultReset}, {tcp: faultRefused},
		{rpc: rpcfault.TooManyRequests}, {rpc: rpcfault.ServerError}, {rpc: rpcfault.Stale}}
	var wg sync.WaitGroup
	var set atomic.Int64
	for i := range r.faults.proxies {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(i)))
			for {
				select {
				case <-ctx.Done():
					return
				case <-time.After(time.Duration(2000+rng.IntN(3000)) * time.Millisecond):
				}
				f := choices[rng.IntN(len(choices))]
				r.faults.set(i, f)
				if f != noFault {
					set.Add(1)
				}
			}
		})
	}
	wg.Wait()
	for i := range r.faults.proxies {
		r.faults.set(i, noFault)
	}
	return int(set.Load())
}

// reorg drops the top chaosReorgDepth blocks once those below the head hold
// minTxs transactions of the hot wallet or more (so that payouts the engine
// has likely seen mined leave the chain), trying until ctx ends; before, if
// not nil, runs just before the reorg. It returns the hot wallet's transactions
// that were dropped.
func (r *chaosRig) reorg(ctx context.Context, minTxs int, before func()) []common.Hash {
	cl := r.chain.Client()
	hot := crypto.PubkeyToAddress(r.hot.PublicKey)
	from := types.LatestSignerForChainID(big.NewInt(sandbox.ChainID))
	hotTxs := func(bs []*types.Block) []common.Hash {
		var out []common.Hash
		for _, b := range bs {
			for _, tx := range b.Transactions() {
				if s, err := types.Sender(from, tx); err == nil && s == hot {
					out = append(out, tx.Hash())
				}
			}
		}
		return out
	}
	// The blocks below the head have been on chain for a block time at
	// least: the engine, polling every 250 ms, has had the time to see
	// their transactions mined.
	settled := func() []*types.Block {
		n, err := cl.BlockNumber(ctx)
		if err != nil || n < chaosReorgDepth+1 {
			return nil
		}
		var bs []*types.Block
		for k := uint64(1); k < chaosReorgDepth; k++ {
			if b, err := cl.BlockByNumber(ctx, new(big.Int).SetUint64(n-k)); err == nil {
				bs = append(bs, b)
			}
		}
		return bs
	}
	for {
		if len(hotTxs(settled())) >= max(minTxs, 1) {
			if before != nil {
				before()
			}
			dropped, err := r.chain.Reorg(chaosReorgDepth)
			if err != nil {
				r.t.Errorf("reorg: %v", err)
				return nil
			}
			if txs := hotTxs(dropped); len(txs) > 0 {
				return txs
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// chaosEngine is `sluice serve` under test: started, SIGKILLed and
// restarted; it keeps every process's output for the logs.
type chaosEngine struct {
	t    *testing.T
	bin  string
	args []string

	// mu guards the fields below.
	// killing is held while the engine must stay up.
	killing sync.Mutex

	mu     sync.Mutex
	cur    *proc
	url    string
	all    []*proc
	kills  int
	starts []time.Duration // from exec to the API's address on stdout
}

func (e *chaosEngine) start() {
	began := time.Now()
	p, line := startProc(e.t, e.bin, "Sluice API at", e.args...)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cur, e.url = p, strings.TrimSpace(strings.TrimPrefix(line, "Sluice API at"))
	e.all = append(e.all, p)
	e.starts = append(e.starts, time.Since(began))
}

// startTimes summarises how long the engine took to start.
func (e *chaosEngine) startTimes() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var sum, worst time.Duration
	for _, d := range e.starts {
		sum += d
		worst = max(worst, d)
	}
	return fmt.Sprintf("%d starts, mean %s, max %s", len(e.starts), (sum / time.Duration(max(len(e.starts), 1))).Round(time.Millisecond), worst.Round(time.Millisecond))
}

// URL is the API of the engine running now (or of the last one).
func (e *chaosEngine) URL() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.url
}

// killAndRestart SIGKILLs the engine and starts a new one.
func (e *chaosEngine) killAndRestart() {
	e.killing.Lock()
	defer e.killing.Unlock()
	e.kill()
	e.start()
}

// kill SIGKILLs the engine without starting another; the caller holds
// killing and starts one with start.
func (e *chaosEngine) kill() {
	e.mu.Lock()
	p := e.cur
	e.kills++
	e.mu.Unlock()
	p.kill()
}

// exited reports whether the engine running now has exited on its own, and
// how.
func (e *chaosEngine) exited() (bool, error) {
	e.mu.Lock()
	p := e.cur
	e.mu.Unlock()
	select {
	case err := <-p.done:
		p.done <- err // kill and stop wait for it too
		return true, err
	default:
		return false, nil
	}
}

// panics returns the first lines of every panic or fatal error in the
// engines' output.
func (e *chaosEngine) panics() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for i, p := range e.all {
		s := p.out.String()
		for _, mark := range []string{"panic: ", "fatal error: "} {
			if k := strings.Index(s, mark); k >= 0 {
				lines := strings.SplitN(s[k:], "\n", 24)
				out = append(out, fmt.Sprintf("engine %d: %s", i, strings.Join(lines[:min(len(lines), 23)], "\n")))
				break
			}
		}
	}
	return out
}

// withoutKills runs f while no kill happens.
func (e *chaosEngine) withoutKills(f func()) {
	e.killing.Lock()
	defer e.killing.Unlock()
	f()
}

func (e *chaosEngine) stop() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cur.stop()
}

func (e *chaosEngine) killCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.kills
}

// logged counts the log lines of every engine process that contain s.
func (e *chaosEngine) logged(s string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, p := range e.all {
		n += strings.Count(p.out.String(), s)
	}
	return n
}

// grep returns the log lines of every engine process that contain s, at
// most max of them.
func (e *chaosEngine) grep(s string, limit int) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for i, p := range e.all {
		for _, l := range strings.Split(p.out.String(), "\n") {
			if strings.Contains(l, s) && len(out) < limit {
				out = append(out, fmt.Sprintf("[engine %d] %s", i, l))
			}
		}
	}
	return out
}

// saveLogs writes every engine's output to $SLUICE_CHAOS_LOG_DIR when set.
func (e *chaosEngine) saveLogs() {
	dir := os.Getenv("SLUICE_CHAOS_LOG_DIR")
	if dir == "" {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, p := range e.all {
		_ = os.WriteFile(filepath.Join(dir, fmt.Sprintf("engine-%02d.log", i)), []byte(p.out.String()), 0o600)
	}
}

// apiGet GETs path from the engine running now and decodes the answer,
// retrying while the engine is down or restarting.
func apiGet(e *chaosEngine, key, path string, v any) error {
	var last error
	for range 200 {
		req, _ := http.NewRequest("GET", e.URL()+path, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			last = err
			time.Sleep(100 * time.Millisecond)
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			last = fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, b)
			if resp.StatusCode >= 500 {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			return last
		}
		return json.Unmarshal(b, v)
	}
	return last
}

// apiCancel asks to cancel a payout, retrying while the engine is down, and
// returns the HTTP status it finally got.
func apiCancel(e *chaosEngine, key, id string) int {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequest("POST", e.URL()+"/v1/payouts/"+id+"/cancel", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		return resp.StatusCode
	}
	return 0
}

// chaosPayout is what the test reads of a payout at the end.
type chaosPayout struct {
	ID       string  `json:"id"`
	Status   string  `json:"status"`
	To       string  `json:"to"`
	Amount   string  `json:"amount"`
	Priority string  `json:"priority"`
	TxHash   *string `json:"tx_hash"`
	Nonce    *uint64 `json:"nonce"`
	Reason   *string `json:"status_reason"`
	Detail   *string `json:"status_detail"`
}

type chaosAttempt struct {
	Nonce        uint64 `json:"nonce"`
	Kind         string `json:"kind"`
	TxHash       string `json:"tx_hash"`
	MaxFeePerGas string `json:"max_fee_per_gas"`
}

// chaosDB is what the test reads from the engine's database once the engine
// has stopped: events per payout and type, and the nonces table.
type chaosDB struct {
	events    map[string]map[string]int // payout id → event type → count
	maxNonce  int64                     // -1 when the table is empty
	minNonce  int64
	nonceRows int64
}

func readChaosDB(t *testing.T, path string) chaosDB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	out := chaosDB{events: map[string]map[string]int{}}
	rows, err := db.Query(`SELECT object_id, type, COUNT(*) FROM events GROUP BY object_id, type`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, typ string
		var n int
		if err := rows.Scan(&id, &typ, &n); err != nil {
			t.Fatal(err)
		}
		if out.events[id] == nil {
			out.events[id] = map[string]int{}
		}
		out.events[id][typ] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	err = db.QueryRow(`SELECT COALESCE(MAX(nonce), -1), COALESCE(MIN(nonce), -1), COUNT(*) FROM nonces`).Scan(&out.maxNonce, &out.minNonce, &out.nonceRows)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
