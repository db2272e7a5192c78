package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	_ "net/http/pprof" // only served with --pprof, on its own address
	"os"

	"github.com/sluicepay/sluice/internal/config"
)

// runServe runs the engine from a config file.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "the YAML config file (see sluice.example.yaml)")
	httpAddr := fs.String("http", "", "listen address of the API (overrides the config's http)")
	dataDir := fs.String("data-dir", "", "local state directory (overrides the config's data_dir)")
	pprofAddr := fs.String("pprof", "", "serve Go's profiler on this address (e.g. 127.0.0.1:6060); off by default")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: serve: %v", errUsage, err)
	}
	if *path == "" {
		return fmt.Errorf("%w: serve needs --config FILE", errUsage)
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	if *httpAddr != "" {
		cfg.HTTP = *httpAddr
	}
	if *dataDir != "" {
		cfg.DataDir = *dataDir
	}
	log := newLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	servePprof(log, *pprofAddr)
	listening := func(url string) { fmt.Fprintf(stdout, "Sluice API at %s\n", url) }
	eng, err := startEngine(ctx, cfg, log, engineOptions{Listening: listening})
	if err != nil {
		return err
	}
	defer eng.Close()
	return eng.Wait(ctx)
}

func newLogger(w io.Writer, level, format string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: l}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func writeFile(path, content string) error {
	return os.WriteFile(path, []byte(content), 0o600)
}

// servePprof serves Go's profiler on addr, when addr is not "".
func servePprof(log *slog.Logger, addr string) {
	if addr != "" {
		go func() { log.Error("pprof server", "err", http.ListenAndServe(addr, nil)) }()
	}
}
