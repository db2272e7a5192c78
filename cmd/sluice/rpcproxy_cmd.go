package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sluicepay/sluice/internal/config"
	"github.com/sluicepay/sluice/internal/rpcpool"
)

// runRPCProxy serves only the failover JSON-RPC endpoint of a config's
// chains: no database, no sending.
func runRPCProxy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rpc-proxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "the YAML config file whose chains and upstreams to serve")
	httpAddr := fs.String("http", "", "listen address (overrides the config's http)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: rpc-proxy: %v", errUsage, err)
	}
	if *path == "" {
		return fmt.Errorf("%w: rpc-proxy needs --config FILE", errUsage)
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	if *httpAddr != "" {
		cfg.HTTP = *httpAddr
	}
	log := newLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	reg := prometheus.NewRegistry()
	pools := map[string]*rpcpool.Pool{}
	defer func() {
		for _, p := range pools {
			p.Stop()
		}
	}()
	for _, ch := range cfg.Chains {
		p, err := startPool(ctx, ch, log, reg)
		if err != nil {
			return err
		}
		pools[ch.Name] = p
	}
	cfg.RPCProxy.Disabled = false
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, `{"status":"ok"}`) })
	handler := withRPCProxy(cfg, pools, mux, log, reg)
	ln, err := net.Listen("tcp", cfg.HTTP)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTP, err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "Sluice RPC proxy at http://%s/rpc/{chain}\n", ln.Addr())
	return serveUntil(ctx, srv, func() error { return srv.Serve(ln) })
}
