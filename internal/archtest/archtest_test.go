// Package archtest checks the dependency rules of DESIGN.md: the domain
// imports no adapter, and adapters never import each other.
package archtest

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const mod = "github.com/sluicepay/sluice/"

type pkg struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

func listPackages(t *testing.T) map[string]pkg {
	t.Helper()
	out, err := exec.Command("go", "list", "-json", "../../...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	pkgs := map[string]pkg{}
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs[strings.TrimPrefix(p.ImportPath, mod)] = p
	}
	return pkgs
}

func TestDomainImportsNoAdapter(t *testing.T) {
	p, ok := listPackages(t)["internal/payout"]
	if !ok {
		t.Fatal("internal/payout not found")
	}
	// Direct imports: no SQL, no HTTP. (go-ethereum's value types reach
	// database/sql/driver for their Scan methods; that is allowed.)
	for _, imp := range p.Imports {
		if imp == "database/sql" || imp == "net/http" || strings.HasPrefix(imp, "github.com/ethereum/go-ethereum/") && imp != "github.com/ethereum/go-ethereum/common" {
			t.Errorf("internal/payout imports %s", imp)
		}
	}
	// Anywhere below it: no node client, no chain, no database driver, no Sluice adapter.
	forbidden := []string{"net/http", "github.com/ethereum/go-ethereum/ethclient",
		"github.com/ethereum/go-ethereum/rpc", "github.com/ethereum/go-ethereum/core", "modernc.org/sqlite", "github.com/jackc/pgx"}
	for _, d := range p.Deps {
		for _, f := range forbidden {
			if d == f || strings.HasPrefix(d, f+"/") {
				t.Errorf("internal/payout depends on %s", d)
			}
		}
		if strings.HasPrefix(d, mod) {
			t.Errorf("internal/payout depends on %s", d)
		}
	}
}

func TestAdaptersDoNotImportEachOther(t *testing.T) {
	adapters := []string{"internal/store", "internal/evm", "internal/signer", "internal/httpapi", "internal/sandbox",
		"internal/config", "internal/rpcpool", "internal/fees"}
	// The one error table lives in evm; the pool and the fee oracle read it.
	allowed := map[string]bool{"internal/rpcpool>internal/evm": true, "internal/fees>internal/evm": true}
	pkgs := listPackages(t)
	for _, a := range adapters {
		p, ok := pkgs[a]
		if !ok {
			t.Errorf("%s not found", a)
			continue
		}
		for _, imp := range p.Imports {
			for _, other := range adapters {
				if other != a && imp == mod+other && !allowed[a+">"+other] {
					t.Errorf("%s imports %s: adapters must not import each other; cmd/sluice wires them", a, other)
				}
			}
		}
	}
	// The reconciliation reads the books and the chain through its ports.
	for _, imp := range pkgs["internal/reconcile"].Imports {
		if strings.HasPrefix(imp, mod) && imp != mod+"internal/payout" && imp != mod+"internal/evm" {
			t.Errorf("internal/reconcile imports %s", imp)
		}
	}
	// The sender depends on the domain, the chain glue, the fee rules and
	// the batch contracts' encoders (contracts: ABI and calldata, no I/O) only.
	for _, imp := range pkgs["internal/txm"].Imports {
		if strings.HasPrefix(imp, mod) && imp != mod+"internal/payout" && imp != mod+"internal/evm" && imp != mod+"internal/fees" &&
			imp != mod+"contracts" {
			t.Errorf("internal/txm imports %s", imp)
		}
	}
}

// The webhook dispatcher reaches the database through its port: it imports
// the domain, the standard library and Prometheus only, and no adapter
// imports it (cmd/sluice wires it; httpapi gets its URL check as a func).
func TestEventsImportsOnlyTheDomain(t *testing.T) {
	pkgs := listPackages(t)
	p, ok := pkgs["internal/events"]
	if !ok {
		t.Fatal("internal/events not found")
	}
	for _, imp := range p.Imports {
		if strings.Contains(strings.SplitN(imp, "/", 2)[0], ".") && imp != mod+"internal/payout" &&
			!strings.HasPrefix(imp, "github.com/prometheus/") {
			t.Errorf("internal/events imports %s", imp)
		}
	}
	for name, q := range pkgs {
		if strings.HasPrefix(name, "internal/") && name != "internal/events" {
			for _, imp := range q.Imports {
				if imp == mod+"internal/events" {
					t.Errorf("%s imports internal/events", name)
				}
			}
		}
	}
}
