package batchfile

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportsOnlyDomain keeps batchfile on the domain side of DESIGN.md: the
// standard library, go-ethereum's common value types and internal/payout.
func TestImportsOnlyDomain(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-f", `{{join .Imports "\n"}}`, ".").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	allowed := map[string]bool{
		"github.com/ethereum/go-ethereum/common":      true,
		"github.com/sluicepay/sluice/internal/payout": true,
	}
	for _, imp := range strings.Fields(string(out)) {
		std := !strings.Contains(strings.SplitN(imp, "/", 2)[0], ".")
		if !std && !allowed[imp] {
			t.Errorf("batchfile imports %s", imp)
		}
	}
}
