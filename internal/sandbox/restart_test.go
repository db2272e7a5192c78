package sandbox

import (
	"context"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rlp"
)

// snapshot is what a restart must bring back.
type snapshot struct {
	head       common.Hash
	number     uint64
	hotETH     *big.Int
	recipient  *big.Int
	susdOfDest *big.Int
	susdCode   int
}

func takeSnapshot(t *testing.T, c *Chain, dest common.Address) snapshot {
	t.Helper()
	cl := dial(t, c)
	ctx := context.Background()
	h, err := cl.HeaderByNumber(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	hotETH, _ := cl.BalanceAt(ctx, c.HotWallet(), nil)
	destETH, _ := cl.BalanceAt(ctx, dest, nil)
	code, _ := cl.CodeAt(ctx, c.SUSD(), nil)
	return snapshot{h.Hash(), h.Number.Uint64(), hotETH, destETH, susdBalance(t, cl, c.SUSD(), dest), len(code)}
}

func (s snapshot) equal(o snapshot) bool {
	return s.head == o.head && s.number == o.number && s.hotETH.Cmp(o.hotETH) == 0 &&
		s.recipient.Cmp(o.recipient) == 0 && s.susdOfDest.Cmp(o.susdOfDest) == 0 && s.susdCode == o.susdCode
}

func TestRestartRestoresChain(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	dest := common.HexToAddress("0x00000000000000000000000000000000000000d5")

	c := startChain(t, Config{DataDir: dir})
	cl := dial(t, c)
	nonce := uint64(1)
	for i := 0; i < 5; i++ {
		sendTx(t, cl, testKey, nonce, dest, big.NewInt(1000), nil, 21000)
		sendTx(t, cl, testKey, nonce+1, c.SUSD(), nil, susdTransferData(t, dest, big.NewInt(7)), 100_000)
		nonce += 2
		commit(t, c)
		commit(t, c) // and an empty block
	}
	before := takeSnapshot(t, c, dest)
	if before.number != 11 || before.recipient.Int64() != 5000 || before.susdOfDest.Int64() != 35 {
		t.Fatalf("before restart: %+v", before)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}

	c2 := startChain(t, Config{DataDir: dir})
	if after := takeSnapshot(t, c2, dest); !after.equal(before) {
		t.Fatalf("after restart %+v, want %+v", after, before)
	}
	if c2.SUSD() != c.SUSD() {
		t.Errorf("SUSD moved from %s to %s", c.SUSD(), c2.SUSD())
	}
	// The restored chain goes on: the next nonce and the next block work.
	cl2 := dial(t, c2)
	tx := sendTx(t, cl2, testKey, nonce, dest, big.NewInt(1), nil, 21000)
	commit(t, c2)
	if r := receipt(t, cl2, tx); r.Status != 1 || r.BlockNumber.Uint64() != before.number+1 {
		t.Fatalf("tx after restart: status %d in block %d", r.Status, r.BlockNumber)
	}
}

func TestRestartKeepsFork(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c := startChain(t, Config{DataDir: dir})
	base := commit(t, c)
	commit(t, c)
	commit(t, c)
	if err := c.Fork(base); err != nil {
		t.Fatal(err)
	}
	side := commit(t, c) // block 3 again, on the fork
	dest := common.HexToAddress("0x00000000000000000000000000000000000000d6")
	before := takeSnapshot(t, c, dest)
	if before.head != side || before.number != 3 {
		t.Fatalf("head after fork = %d %s, want 3 %s", before.number, before.head, side)
	}
	c.Close()
	c2 := startChain(t, Config{DataDir: dir})
	if after := takeSnapshot(t, c2, dest); !after.equal(before) {
		t.Fatalf("after restart %+v, want %+v", after, before)
	}
}

func TestRestartCutsTornTail(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c := startChain(t, Config{DataDir: dir})
	commit(t, c)
	dest := common.Address{1}
	before := takeSnapshot(t, c, dest)
	c.Close()

	path := filepath.Join(dir, chainSubdir, journalFile)
	size := fileSize(t, path)
	// Half a block record, as a crash in the middle of an append leaves it.
	appendBytes(t, path, []byte{recordBlock, 0, 0, 2, 0, 1, 2, 3, 4, 0xf9, 0x01})
	c2 := startChain(t, Config{DataDir: dir})
	if after := takeSnapshot(t, c2, dest); !after.equal(before) {
		t.Fatalf("after restart %+v, want %+v", after, before)
	}
	if got := fileSize(t, path); got != size {
		t.Errorf("journal is %d bytes, want the torn tail cut back to %d", got, size)
	}
	commit(t, c2) // appends after the cut
	c2.Close()
	startChain(t, Config{DataDir: dir})
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

func appendBytes(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
}

// TestRefusesUnrestorableDataDir damages a chain's data dir in each way and
// checks that Start refuses it, says where and what, and changes nothing.
func TestRefusesUnrestorableDataDir(t *testing.T) {
	t.Parallel()
	otherKey, _ := crypto.GenerateKey()
	tests := []struct {
		name   string
		damage func(t *testing.T, chainDir string)
		cfg    Config
		want   string
	}{
		{"other hot wallet", nil, Config{HotWalletKey: otherKey}, "was created for hot wallet"},
		{"journal damaged in the middle", func(t *testing.T, d string) {
			flipByte(t, filepath.Join(d, journalFile), 200)
		}, Config{}, "journal"},
		{"journal missing", func(t *testing.T, d string) {
			must(t, os.Remove(filepath.Join(d, journalFile)))
		}, Config{}, "missing"},
		{"meta unreadable", func(t *testing.T, d string) {
			must(t, os.WriteFile(filepath.Join(d, metaFile), []byte("{not json"), 0o600))
		}, Config{}, "meta.json is not valid"},
		{"foreign genesis", func(t *testing.T, d string) {
			rewriteMeta(t, d, func(m *meta) { m.GenesisHash = common.Hash{1} })
		}, Config{}, "genesis block"},
		{"chain id", func(t *testing.T, d string) {
			rewriteMeta(t, d, func(m *meta) { m.ChainID = 1 })
		}, Config{}, "chain id 1"},
		{"block that does not import", func(t *testing.T, d string) {
			appendForgedBlock(t, d)
		}, Config{}, "could not be replayed"},
		{"foreign files without meta", func(t *testing.T, d string) {
			must(t, os.Remove(filepath.Join(d, metaFile)))
		}, Config{}, "not a chain this version can restore"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			c := startChain(t, Config{DataDir: dir})
			for i := 0; i < 3; i++ {
				commit(t, c)
			}
			c.Close()
			chainDir := filepath.Join(dir, chainSubdir)
			if tt.damage != nil {
				tt.damage(t, chainDir)
			}
			journalBefore, _ := os.ReadFile(filepath.Join(chainDir, journalFile))

			cfg := tt.cfg
			cfg.DataDir, cfg.RPCAddr = dir, "127.0.0.1:0"
			if cfg.HotWalletKey == nil {
				cfg.HotWalletKey = testKey
			}
			c2, err := Start(context.Background(), cfg)
			if err == nil {
				c2.Close()
				t.Fatal("Start accepted the data dir")
			}
			checkRefusal(t, err, dir, tt.want)
			if after, _ := os.ReadFile(filepath.Join(chainDir, journalFile)); string(after) != string(journalBefore) {
				t.Error("the refused journal was modified")
			}
		})
	}
}

func checkRefusal(t *testing.T, err error, dir, want string) {
	t.Helper()
	t.Logf("refused: %v", err)
	if !errors.Is(err, ErrDataDir) {
		t.Errorf("error %q does not match ErrDataDir", err)
	}
	for _, s := range []string{dir, want, "move it away"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not say %q", err, s)
		}
	}
}

func TestRefusesSecondProcess(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	startChain(t, Config{DataDir: dir})
	_, err := Start(context.Background(), Config{DataDir: dir, HotWalletKey: testKey, RPCAddr: "127.0.0.1:0"})
	checkRefusal(t, err, dir, "another process")
}

func TestMustExistRefusesEmptyDataDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, err := Start(context.Background(), Config{DataDir: dir, HotWalletKey: testKey, MustExist: true})
	checkRefusal(t, err, dir, "holds no chain")
}

// appendForgedBlock journals a block on top of the head whose state root
// is wrong, as a journal from another chain or a bug would.
func appendForgedBlock(t *testing.T, chainDir string) {
	t.Helper()
	path := filepath.Join(chainDir, journalFile)
	var last *types.Block
	_, _, err := scanJournal(path, func(r record) error {
		if r.kind == recordBlock {
			last = new(types.Block)
			return rlp.DecodeBytes(r.payload, last)
		}
		return nil
	})
	must(t, err)
	h := types.CopyHeader(last.Header())
	h.ParentHash, h.Number, h.Time = last.Hash(), new(big.Int).Add(h.Number, common.Big1), h.Time+1
	h.Root = common.Hash{0xba, 0xd}
	payload, err := rlp.EncodeToBytes(types.NewBlockWithHeader(h))
	must(t, err)
	j, err := openJournal(path, fileSize(t, path))
	must(t, err)
	must(t, j.append(recordBlock, payload))
	must(t, j.close())
}

func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	must(t, err)
	if int64(len(b)) <= off+100 {
		t.Fatalf("journal too short (%d bytes) to damage its middle", len(b))
	}
	b[off] ^= 0xff
	must(t, os.WriteFile(path, b, 0o600))
}

func rewriteMeta(t *testing.T, chainDir string, edit func(*meta)) {
	t.Helper()
	d := &dataDir{dir: chainDir}
	raw, err := os.ReadFile(filepath.Join(chainDir, metaFile))
	must(t, err)
	must(t, jsonUnmarshal(raw, &d.meta))
	edit(&d.meta)
	must(t, d.writeMeta())
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestCancelledStartIsNotARefusal(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c := startChain(t, Config{DataDir: dir})
	commit(t, c)
	c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Start(ctx, Config{DataDir: dir, HotWalletKey: testKey})
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrDataDir) {
		t.Fatalf("err = %v, want context.Canceled and no data dir refusal", err)
	}
	startChain(t, Config{DataDir: dir}) // and the chain is still there
}
