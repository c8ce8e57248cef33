package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/keycard-auth/keycard/dpop"
	"github.com/keycard-auth/keycard/internal/gateway"
	"github.com/keycard-auth/keycard/internal/redis"
)

// gateway runs the verifying reverse proxy of the configuration file
// (gateway.Run) until the context is cancelled (SIGINT or SIGTERM),
// reloading it on SIGHUP and whenever the file changes. A configuration
// that does not load is a usage error (exit 2).
func (e *cmdEnv) gateway(args []string) int {
	fs := e.flagSet("gateway")
	var configPath string
	fs.StringVar(&configPath, "config", "", "YAML configuration `file` (or KEYCARD_CONFIG); see docs/gateway.md")
	otlpEndpoint := fs.String("otlp-endpoint", "", "send OpenTelemetry traces to this OTLP/HTTP collector `URL` (such as http://127.0.0.1:4318), over the file's otlp_endpoint; see docs/observability.md")
	redisURL := fs.String("redis", "", "a redis:// or rediss:// `URL` (or KEYCARD_REDIS): DPoP proof ids are remembered there, shared by every gateway instance on it, instead of in each instance alone; see docs/dpop.md")
	redisTimeout := fs.Duration("redis-timeout", redis.DefaultReplayTimeout, "with --redis: how long one proof-id check may wait for Redis before this instance checks the id alone (a slower Redis leaves a replay window across instances; see docs/dpop.md)")
	forwardAuth := fs.Bool("forward-auth", false, "answer only the auth subrequests of a proxy in front (nginx, Caddy, Traefik), proxying nothing: routes need no upstream; see docs/forward-auth.md")
	if _, code, ok := e.parseFlags(fs, args, 0); !ok {
		return code
	}
	if configPath == "" {
		configPath = e.getenv(envName("config"))
	}
	if configPath == "" {
		fmt.Fprintln(e.stderr, "keycard gateway: --config is required")
		printFlags(e.stderr, fs)
		return exitUsage
	}
	data, err := os.ReadFile(configPath)
	if err != nil {
		fmt.Fprintf(e.stderr, "keycard gateway: %v\n", err)
		return exitUsage
	}
	parse := gateway.ParseOptions{ForwardAuthOnly: *forwardAuth, OTLPEndpoint: *otlpEndpoint}
	cfg, err := gateway.LoadConfigWith(configPath, data, parse)
	if err != nil {
		fmt.Fprintf(e.stderr, "keycard gateway: %v\n", err)
		return exitUsage
	}
	level := new(slog.LevelVar)
	level.Set(cfg.Level())
	log := slog.New(slog.NewJSONHandler(e.stderr, &slog.HandlerOptions{Level: level}))
	if *redisURL == "" {
		*redisURL = e.getenv(envName("redis"))
	}
	var replay dpop.Replayer
	if *redisURL != "" {
		rc, err := redis.NewClient(*redisURL)
		if err != nil {
			fmt.Fprintf(e.stderr, "keycard gateway: --redis: %v\n", err)
			return exitUsage
		}
		defer rc.Close()
		replay = redis.NewReplayCache(rc, redis.ReplayOptions{Logger: log, Timeout: *redisTimeout})
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	err = gateway.Run(e.ctx, gateway.RunOptions{Config: cfg, ConfigPath: configPath, Loaded: data, Signals: hup, Logger: log, Level: level, Parse: parse, Replay: replay})
	if err != nil {
		return e.fail("gateway: %v", err)
	}
	log.Info("stopped")
	return exitOK
}
