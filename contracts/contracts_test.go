package contracts_test

import (
	"bytes"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/sluicepay/sluice/contracts"
)

func TestSUSDArtifact(t *testing.T) {
	t.Parallel()
	a := contracts.SUSD()
	if !strings.HasPrefix(a.CompilerVersion, "0.8.30+") || a.EVMVersion != "prague" {
		t.Errorf("compiled with solc %q for %q, want 0.8.30 for prague", a.CompilerVersion, a.EVMVersion)
	}
	// Selectors and topics every ERC-20 client relies on.
	methods := map[string]string{
		"transfer":     "a9059cbb",
		"approve":      "095ea7b3",
		"transferFrom": "23b872dd",
		"balanceOf":    "70a08231",
		"allowance":    "dd62ed3e",
		"totalSupply":  "18160ddd",
		"decimals":     "313ce567",
		"name":         "06fdde03",
		"symbol":       "95d89b41",
	}
	for name, want := range methods {
		m, ok := a.ABI.Methods[name]
		if !ok {
			t.Errorf("ABI has no %s", name)
			continue
		}
		if got := common.Bytes2Hex(m.ID); got != want {
			t.Errorf("%s selector = %s, want %s", name, got, want)
		}
	}
	events := map[string]string{
		"Transfer": "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef",
		"Approval": "0x8c5be1e5ebec7d5bd14f71427d1e84f3dd0314c0f7b2291e5b200ac8c7c3b925",
	}
	for name, want := range events {
		if got := a.ABI.Events[name].ID.Hex(); got != want {
			t.Errorf("%s topic = %s, want %s", name, got, want)
		}
	}
	if !bytes.Contains(a.Bytecode, a.DeployedBytecode) {
		t.Error("creation code does not carry the runtime code")
	}
}

func TestSUSDDeployData(t *testing.T) {
	t.Parallel()
	holder := common.HexToAddress("0x1111111111111111111111111111111111111111")
	data, err := contracts.SUSDDeployData(holder, big.NewInt(1_000_000))
	if err != nil {
		t.Fatal(err)
	}
	code := contracts.SUSDCreationCode()
	if !bytes.HasPrefix(data, code) || len(data) != len(code)+64 {
		t.Fatalf("deploy data is not creation code + two words (len %d, code %d)", len(data), len(code))
	}
	args := data[len(code):]
	if !bytes.Equal(args[12:32], holder.Bytes()) || new(big.Int).SetBytes(args[32:]).Int64() != 1_000_000 {
		t.Errorf("constructor arguments = %x", args)
	}
	if _, err := contracts.SUSDDeployData(holder, big.NewInt(-1)); err == nil {
		t.Error("negative supply accepted")
	}
}

func TestSUSDCopiesAreIndependent(t *testing.T) {
	t.Parallel()
	a := contracts.SUSD()
	a.Bytecode[0] ^= 0xff
	if bytes.Equal(a.Bytecode, contracts.SUSDCreationCode()) {
		t.Error("modifying a returned artifact changed the embedded one")
	}
}

// TestArtifactsMatchSources recompiles src/ with the pinned solc and fails
// when the committed artifacts are stale. It needs Node.js and
// `npm ci --prefix contracts`; without them it is skipped.
func TestArtifactsMatchSources(t *testing.T) {
	t.Parallel()
	nodeBin, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not on PATH")
	}
	if _, err := os.Stat(filepath.Join("node_modules", "solc", "package.json")); err != nil {
		t.Skip("solc is not installed: run npm ci --prefix contracts")
	}
	out, err := exec.Command(nodeBin, "build.js", "--check").CombinedOutput()
	if err != nil {
		t.Fatalf("node build.js --check: %v\n%s", err, out)
	}
}
