// Package contracts owns Sluice's Solidity contracts: their sources in src/,
// the artifacts the pinned solc compiles from them (node build.js), and the
// Go view of those artifacts, embedded into the binary.
//
// The artifacts are committed so that a Go build never needs Node.js; a test
// recompiles them and fails when they are stale.
package contracts

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"math/big"
	"path"
	"sync"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
)

// SUSD's fixed metadata, as declared in src/SUSD.sol.
const (
	SUSDName     = "Sandbox USD"
	SUSDSymbol   = "SUSD"
	SUSDDecimals = 6
)

//go:embed artifacts/*.json
var artifactFS embed.FS

// Artifact is one compiled contract.
type Artifact struct {
	// ContractName is the Solidity contract's name, e.g. "SUSD".
	ContractName string
	// SourceName is the source file it was compiled from, e.g. "src/SUSD.sol".
	SourceName string
	// CompilerVersion is solc's full version string.
	CompilerVersion string
	// EVMVersion is the EVM version the code was compiled for.
	EVMVersion string
	// ABI is the parsed contract ABI.
	ABI abi.ABI
	// Bytecode is the creation code, without constructor arguments.
	Bytecode []byte
	// DeployedBytecode is the runtime code a successful deployment leaves at
	// the contract's address.
	DeployedBytecode []byte
}

// artifactJSON mirrors the file build.js writes.
type artifactJSON struct {
	ContractName string `json:"contractName"`
	SourceName   string `json:"sourceName"`
	Compiler     struct{ Version string }
	Settings     struct{ EVMVersion string }
	ABI          json.RawMessage `json:"abi"`
	Bytecode     hexutil.Bytes   `json:"bytecode"`
	Deployed     hexutil.Bytes   `json:"deployedBytecode"`
}

// Load parses the embedded artifact of the named contract.
func Load(name string) (*Artifact, error) {
	raw, err := artifactFS.ReadFile(path.Join("artifacts", name+".json"))
	if err != nil {
		return nil, fmt.Errorf("contracts: no artifact for %q: %w", name, err)
	}
	var a artifactJSON
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, fmt.Errorf("contracts: decode %s artifact: %w", name, err)
	}
	parsed, err := abi.JSON(bytes.NewReader(a.ABI))
	if err != nil {
		return nil, fmt.Errorf("contracts: parse %s abi: %w", name, err)
	}
	if len(a.Bytecode) == 0 || len(a.Deployed) == 0 {
		return nil, fmt.Errorf("contracts: %s artifact has no bytecode", name)
	}
	return &Artifact{
		ContractName:     a.ContractName,
		SourceName:       a.SourceName,
		CompilerVersion:  a.Compiler.Version,
		EVMVersion:       a.Settings.EVMVersion,
		ABI:              parsed,
		Bytecode:         a.Bytecode,
		DeployedBytecode: a.Deployed,
	}, nil
}

// DeployData returns the creation code followed by the ABI-encoded
// constructor arguments: the data of a contract-creation transaction.
func (a *Artifact) DeployData(args ...any) ([]byte, error) {
	encoded, err := a.ABI.Pack("", args...)
	if err != nil {
		return nil, fmt.Errorf("contracts: %s constructor arguments: %w", a.ContractName, err)
	}
	data := make([]byte, 0, len(a.Bytecode)+len(encoded))
	return append(append(data, a.Bytecode...), encoded...), nil
}

var loadSUSD = sync.OnceValue(func() *Artifact {
	a, err := Load("SUSD")
	if err != nil {
		// The artifact is embedded at build time and checked by the tests,
		// so this is a broken build, not a runtime condition.
		panic(err)
	}
	return a
})

// SUSD returns the compiled Sandbox USD token. The caller may modify the
// returned value: it is a copy.
func SUSD() *Artifact {
	a := *loadSUSD()
	a.Bytecode = bytes.Clone(a.Bytecode)
	a.DeployedBytecode = bytes.Clone(a.DeployedBytecode)
	return &a
}

// SUSDCreationCode returns SUSD's creation code without constructor arguments.
func SUSDCreationCode() []byte { return bytes.Clone(loadSUSD().Bytecode) }

// SUSDRuntimeCode returns the code a SUSD deployment leaves on chain.
func SUSDRuntimeCode() []byte { return bytes.Clone(loadSUSD().DeployedBytecode) }

// SUSDABI returns SUSD's parsed ABI.
func SUSDABI() abi.ABI { return loadSUSD().ABI }

// SUSDDeployData returns the data of a transaction that deploys SUSD and
// mints supply base units to holder.
func SUSDDeployData(holder common.Address, supply *big.Int) ([]byte, error) {
	if supply == nil || supply.Sign() < 0 {
		return nil, fmt.Errorf("contracts: SUSD supply must be a non-negative integer, got %v", supply)
	}
	return loadSUSD().DeployData(holder, supply)
}
