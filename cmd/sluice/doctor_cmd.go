package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/sluicepay/sluice/internal/config"
	"github.com/sluicepay/sluice/internal/doctor"
	"github.com/sluicepay/sluice/internal/payout"
)

// defaultDoctorConfig is read when --config is not given.
const defaultDoctorConfig = "sluice.yaml"

// runDoctor checks what a config names and prints a table (or JSON). Its
// exit code is 0 when all is OK, 1 with warnings, 2 with failures or a
// config that does not load.
func runDoctor(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runDoctorWith(ctx, args, stdout, stderr, doctor.Options{})
}

// runDoctorWith is runDoctor with options tests set (a clock, test roots).
func runDoctorWith(ctx context.Context, args []string, stdout, stderr io.Writer, opts doctor.Options) int {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", defaultDoctorConfig, "the YAML config file to check")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sluice doctor: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintf(stderr, "sluice doctor: %s: %v\n", *path, err)
		return 2
	}
	if opts.OpenSigner == nil {
		opts.OpenSigner = func(ctx context.Context, s config.Signer, field string) (payout.Signer, error) {
			return openSignerBackend(ctx, s, field, nil)
		}
	}
	rep := doctor.Run(ctx, cfg, opts)
	if *asJSON {
		err = rep.WriteJSON(stdout)
	} else {
		err = rep.WriteTable(stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, "sluice doctor: write report:", err)
		return 2
	}
	return rep.ExitCode()
}
