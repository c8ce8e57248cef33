package loadgen

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"
)

// DefaultTeardownTimeout is how long Bench's teardown may take.
const DefaultTeardownTimeout = time.Minute

// cpuReadTimeout bounds a CPU reading after the run.
const cpuReadTimeout = 10 * time.Second

// BenchOptions describe a whole run of "keycard bench": a workload on a
// target, set up, measured and torn down.
type BenchOptions struct {
	// Workload is one of WorkloadNames.
	Workload string
	Target   Target
	// Config is how to run the requests: Concurrency, Rate, Duration or
	// Requests, Progress. Bench sets SelfTimed from the workload.
	Config          Config
	WorkloadOptions WorkloadOptions
	// ServerCPU reads the CPU time of the server under test around the
	// run. With nil, Bench reads the default one (DefaultServerCPU), and a
	// failure to read it is reported as unavailable; a meter given here
	// must answer before the run or Bench fails.
	ServerCPU CPUMeter
	// GeneratorCPU reads this load generator's CPU time; nil means
	// ProcCPU of this process.
	GeneratorCPU CPUMeter
	// Logf, when not nil, gets a line about the setup.
	Logf func(format string, args ...any)
	// TeardownTimeout bounds the teardown; 0 means
	// DefaultTeardownTimeout.
	TeardownTimeout time.Duration
}

// DefaultServerCPU returns the meter Bench reads when none is given: the
// /metrics of the process the workload loads, the auth server's, or the
// gateway's for the gateway workloads. revocation-latency has none (its
// cycles are not requests to one process): nil.
func DefaultServerCPU(workload string, t Target) CPUMeter {
	switch workload {
	case WorkloadRevocationLatency:
		return nil
	case WorkloadGateway, WorkloadGatewayDPoP:
		return MetricsCPU{URL: t.Gateway + "/metrics"}
	}
	return MetricsCPU{URL: t.URL + "/metrics"}
}

// TeardownError is a teardown that left users or clients behind.
type TeardownError struct {
	Prefix string
	Err    error
}

func (e *TeardownError) Error() string {
	return fmt.Sprintf("cleaning up left users or clients named %s-… behind: %v", e.Prefix, e.Err)
}

func (e *TeardownError) Unwrap() error { return e.Err }

// Bench checks the target, logs the admin in, sets the workload up, runs
// it under opts.Config while reading the server's CPU time before and
// after, deletes what it created, and returns the report.
//
// When the run took place, the report is returned, also with an error:
// a *TeardownError when the teardown failed. Before that, every failure
// (an unreachable target, a refused admin, a failed setup, an
// interruption during setup) is an error with no report. An interrupted
// run is a report with Interrupted set.
func Bench(ctx context.Context, opts BenchOptions) (*Report, error) {
	fx := NewFixture(opts.Target)
	w, err := NewWorkload(opts.Workload, fx, opts.WorkloadOptions)
	if err != nil {
		return nil, err
	}
	if err := fx.Check(ctx); err != nil {
		return nil, err
	}
	if NeedsGateway(opts.Workload) {
		if err := fx.CheckGateway(ctx); err != nil {
			return nil, err
		}
	}
	serverCPU, optional := opts.ServerCPU, false
	if serverCPU == nil {
		serverCPU, optional = DefaultServerCPU(opts.Workload, opts.Target), true
	}
	if serverCPU != nil && !optional {
		if _, err := serverCPU.ReadCPU(ctx); err != nil {
			return nil, fmt.Errorf("reading the server's CPU time: %w", err)
		}
	}
	genCPU := opts.GeneratorCPU
	if genCPU == nil {
		genCPU = ProcCPU{PID: os.Getpid()}
	}
	if err := fx.AdminLogin(ctx); err != nil {
		return nil, err
	}
	// Whatever happens from here on (an error, Ctrl-C), delete what was
	// created, with a context of its own.
	teardown := func() error {
		timeout := opts.TeardownTimeout
		if timeout <= 0 {
			timeout = DefaultTeardownTimeout
		}
		tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		defer cancel()
		if err := fx.Teardown(tctx); err != nil {
			return &TeardownError{Prefix: fx.Prefix(), Err: err}
		}
		return nil
	}

	if opts.Logf != nil {
		opts.Logf("setting up %s (users and clients named %s-…)", opts.Workload, fx.Prefix())
	}
	if err := w.Setup(ctx, opts.Config.Concurrency); err != nil {
		if ctx.Err() != nil {
			err = errors.New("interrupted during setup")
		} else {
			err = fmt.Errorf("setup: %w", err)
		}
		return nil, errors.Join(err, teardown())
	}

	cfg := opts.Config
	cfg.SelfTimed = w.SelfTimed()
	var sBefore, gBefore CPUReading
	var sErrBefore, gErrBefore error
	if serverCPU != nil {
		sBefore, sErrBefore = serverCPU.ReadCPU(ctx)
	}
	gBefore, gErrBefore = genCPU.ReadCPU(ctx)
	res, err := Run(ctx, cfg, w.Op)
	if err != nil {
		return nil, errors.Join(err, teardown())
	}
	gAfter, gErrAfter := genCPU.ReadCPU(ctx)
	var server *CPUFigure
	if serverCPU != nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cpuReadTimeout)
		var sAfter CPUReading
		sErrAfter := sErrBefore // no second reading after a failed first one
		if sErrBefore == nil {
			sAfter, sErrAfter = serverCPU.ReadCPU(rctx)
		}
		cancel()
		server = NewCPUFigure(serverCPU.Source(), sBefore, sErrBefore, sAfter, sErrAfter, res.Successes())
		if optional && !server.Measured() {
			server.Unavailable += " (give --metrics-url or --server-pid)"
		}
	} else {
		server = &CPUFigure{Unavailable: "not measured for " + opts.Workload + " unless asked for (--metrics-url or --server-pid)"}
	}

	report := NewReport(opts.Workload, opts.Target, res, CurrentEnvironment())
	report.ServerCPU = server
	report.GeneratorCPU = NewCPUFigure(genCPU.Source(), gBefore, gErrBefore, gAfter, gErrAfter, res.Successes())
	return &report, teardown()
}
