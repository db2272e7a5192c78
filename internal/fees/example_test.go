package fees_test

import (
	"errors"
	"fmt"
	"math/big"

	"github.com/sluicepay/sluice/internal/evm"
	"github.com/sluicepay/sluice/internal/fees"
)

// A stuck transaction is replaced with both fields raised by geth's 10%,
// or to the current quote when that is higher, up to the cap.
func ExampleBump() {
	old := evm.Fees{MaxFeePerGas: big.NewInt(30_000_000_000), MaxPriorityFeePerGas: big.NewInt(1_000_000_000)}
	current := fees.Quote{Dynamic: true, Fees: evm.Fees{MaxFeePerGas: big.NewInt(31_000_000_000), MaxPriorityFeePerGas: big.NewInt(2_000_000_000)}}
	next, err := fees.Bump(old, current, big.NewInt(40_000_000_000))
	fmt.Println(next.MaxFeePerGas, next.MaxPriorityFeePerGas, err)

	_, err = fees.Bump(next, current, big.NewInt(35_000_000_000))
	var capErr *fees.CapReachedError
	if errors.As(err, &capErr) {
		fmt.Println(capErr.Reason(), capErr.Need.MaxFeePerGas)
	}
	// Output:
	// 33000000000 2000000000 <nil>
	// fee_cap_reached 36300000000
}

// The standard priority replaces after 3 blocks, then waits twice as long
// after each replacement, up to 48 blocks.
func ExampleSchedule_Due() {
	s := fees.Schedule{After: 3, MaxWait: 48}
	for attempt := 1; attempt <= 6; attempt++ {
		fmt.Printf("attempt %d: replace after %d blocks\n", attempt, s.Wait(attempt))
	}
	fmt.Println(s.Due(5, 2), s.Due(6, 2))
	// Output:
	// attempt 1: replace after 3 blocks
	// attempt 2: replace after 6 blocks
	// attempt 3: replace after 12 blocks
	// attempt 4: replace after 24 blocks
	// attempt 5: replace after 48 blocks
	// attempt 6: replace after 48 blocks
	// false true
}
