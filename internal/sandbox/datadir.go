package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/gofrs/flock"
)

// Files inside DATA_DIR/chain.
const (
	chainSubdir = "chain"
	metaFile    = "meta.json"
	journalFile = "blocks.journal"
	lockFile    = "LOCK"
	metaFormat  = 1
)

// ErrDataDir is matched by errors.Is for every refusal to start on a data
// dir whose chain cannot be restored.
var ErrDataDir = errors.New("sandbox: data dir refused")

// DataDirError says why the chain in a data dir cannot be restored. Start
// never replaces such a chain with a new one: that would silently drop every
// payout made on it.
type DataDirError struct {
	// Dir is the data dir as configured.
	Dir string
	// Problem says what is wrong, in words.
	Problem string
	// Err is the underlying error, if any.
	Err error
}

// Error tells what is wrong and what to do about it.
func (e *DataDirError) Error() string {
	msg := fmt.Sprintf("sandbox: cannot restore the dev chain in data dir %s: %s", e.Dir, e.Problem)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg + ". The data dir was left untouched; fix the cause and restart, or move it away " +
		"(or use another --data-dir) to start a new chain"
}

// Is makes errors.Is(err, ErrDataDir) true.
func (e *DataDirError) Is(target error) bool { return target == ErrDataDir }

// Unwrap returns the underlying error.
func (e *DataDirError) Unwrap() error { return e.Err }

// meta is DATA_DIR/chain/meta.json: what a restart must match.
type meta struct {
	Format          int            `json:"format"`
	ChainID         uint64         `json:"chain_id"`
	GenesisHash     common.Hash    `json:"genesis_hash"`
	GenesisGasLimit uint64         `json:"genesis_gas_limit"`
	HotWallet       common.Address `json:"hot_wallet"`
	SUSD            common.Address `json:"susd"`
	BatchExecutor   common.Address `json:"batch_executor,omitempty"`
	ExecutorCode    hexutil.Bytes  `json:"batch_executor_code,omitempty"`
	CreatedAt       time.Time      `json:"created_at"`
}

// dataDir is an opened, locked DATA_DIR/chain.
type dataDir struct {
	root  string // DATA_DIR as configured, for messages
	dir   string // DATA_DIR/chain
	lock  *flock.Flock
	meta  meta
	fresh bool // no chain existed: meta was just written
}

func (d *dataDir) refuse(problem string, err error) error {
	return &DataDirError{Dir: d.root, Problem: problem, Err: err}
}

func (d *dataDir) journalPath() string { return filepath.Join(d.dir, journalFile) }

// openDataDir locks DATA_DIR/chain and reads its metadata, creating both
// (with want as the metadata) when there is no chain yet.
func openDataDir(root string, want meta, mustExist bool) (*dataDir, error) {
	d := &dataDir{root: root, dir: filepath.Join(root, chainSubdir)}
	if err := os.MkdirAll(d.dir, 0o700); err != nil {
		return nil, fmt.Errorf("sandbox: create %s: %w", d.dir, err)
	}
	d.lock = flock.New(filepath.Join(d.dir, lockFile))
	locked, err := d.lock.TryLock()
	if err != nil {
		return nil, fmt.Errorf("sandbox: lock %s: %w", d.dir, err)
	}
	if !locked {
		return nil, d.refuse("another process is running this chain (its "+chainSubdir+"/"+lockFile+" is held)", nil)
	}
	if err := d.load(want, mustExist); err != nil {
		d.lock.Unlock()
		return nil, err
	}
	return d, nil
}

// load reads meta.json and checks it against want, or initialises an empty
// directory.
func (d *dataDir) load(want meta, mustExist bool) error {
	raw, err := os.ReadFile(filepath.Join(d.dir, metaFile))
	if errors.Is(err, fs.ErrNotExist) {
		return d.initialise(want, mustExist)
	}
	if err != nil {
		return d.refuse("cannot read "+chainSubdir+"/"+metaFile, err)
	}
	if err := json.Unmarshal(raw, &d.meta); err != nil {
		return d.refuse(chainSubdir+"/"+metaFile+" is not valid", err)
	}
	if err := d.check(want); err != nil {
		return err
	}
	if _, err := os.Stat(d.journalPath()); err != nil {
		return d.refuse("its block journal "+chainSubdir+"/"+journalFile+" is missing or unreadable", err)
	}
	return nil
}

// check compares the stored metadata with the configuration.
func (d *dataDir) check(want meta) error {
	got := d.meta
	switch {
	case got.Format != metaFormat:
		return d.refuse(fmt.Sprintf("its format is %d, this version reads format %d", got.Format, metaFormat), nil)
	case got.ChainID != want.ChainID:
		return d.refuse(fmt.Sprintf("it holds chain id %d, not %d", got.ChainID, want.ChainID), nil)
	case got.HotWallet != want.HotWallet:
		return d.refuse(fmt.Sprintf("it was created for hot wallet %s, but the configured hot wallet is %s",
			got.HotWallet, want.HotWallet), nil)
	}
	return nil
}

// checkGenesis compares the genesis hash rebuilt from the configuration with
// the stored one.
func (d *dataDir) checkGenesis(h common.Hash) error {
	if h != d.meta.GenesisHash {
		return d.refuse(fmt.Sprintf("its genesis block is %s but this build makes %s "+
			"(the dev chain configuration changed since it was made, or meta.json was edited)", d.meta.GenesisHash, h), nil)
	}
	return nil
}

// initialise turns an empty directory into a new chain's. Anything in it
// other than an empty journal means it is not ours to overwrite.
func (d *dataDir) initialise(want meta, mustExist bool) error {
	entries, err := os.ReadDir(d.dir)
	if err != nil {
		return d.refuse("cannot list "+chainSubdir, err)
	}
	for _, e := range entries {
		switch {
		case e.Name() == lockFile:
			continue
		case e.Name() == metaFile+".tmp", e.Name() == journalFile && emptyJournal(d.journalPath()):
			continue // a crash during a previous initialise left them
		}
		return d.refuse(fmt.Sprintf("%s/%s exists but %s/%s does not: this is not a chain this version can restore",
			chainSubdir, e.Name(), chainSubdir, metaFile), nil)
	}
	if mustExist {
		return d.refuse("it holds no chain, yet payouts were made here on the chain that was in it (its payout database remains)", nil)
	}
	// The journal comes first: from now on a missing journal means lost blocks.
	j, err := openJournal(d.journalPath(), 0)
	if err != nil {
		return fmt.Errorf("sandbox: create journal: %w", err)
	}
	if err := j.close(); err != nil {
		return fmt.Errorf("sandbox: create journal: %w", err)
	}
	d.meta, d.fresh = want, true
	return d.writeMeta()
}

// emptyJournal reports whether the journal at path holds no record.
func emptyJournal(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Size() <= int64(len(journalMagic))
}

// writeMeta writes meta.json atomically: temp file, fsync, rename, fsync dir.
func (d *dataDir) writeMeta() error {
	raw, err := json.MarshalIndent(d.meta, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(d.dir, metaFile+".tmp")
	if err := writeFileSync(tmp, append(raw, '\n')); err != nil {
		return fmt.Errorf("sandbox: write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, filepath.Join(d.dir, metaFile)); err != nil {
		return fmt.Errorf("sandbox: write meta: %w", err)
	}
	return syncDir(d.dir)
}

func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

func (d *dataDir) close() error {
	return d.lock.Unlock()
}
