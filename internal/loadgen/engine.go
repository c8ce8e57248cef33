// Package loadgen is the engine of "keycard bench": it runs a request
// function from a fixed number of workers, either in a closed loop (each
// worker sends its next request when the previous one is answered) or in
// an open loop (requests start at scheduled times, at a fixed rate,
// whatever the answers' delay), records their latencies in log-linear
// histograms, counts errors by kind, and reports on a terminal and in
// JSON. The workloads it drives against a Keycard deployment, with their
// setup and teardown through the admin API, are in workload.go; Bench
// (bench.go) runs one from setup to teardown, reading the server's and
// its own CPU time around the run (cpu.go).
//
// In the open loop a request's latency is measured from the time it was
// scheduled to start, not from when a worker was free to send it, so a
// slow answer that delays the requests behind it shows in their latencies
// too: the "coordinated omission" of closed-loop tools does not hide the
// queueing a real client population would see. docs/bench.md explains the
// measurement.
package loadgen

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// Op performs one request for the worker numbered worker (0 to
// Concurrency-1). A worker runs one Op at a time, so per-worker state
// needs no lock. Op returns nil when the request succeeded and an error
// whose ErrorKind names what went wrong otherwise. The duration it returns
// is recorded as the request's latency only when the Config is SelfTimed
// (a workload that measures something other than one request's round
// trip); otherwise the engine times the call itself.
type Op func(ctx context.Context, worker int) (time.Duration, error)

// Clock is the time source of a run. Tests substitute a fake one.
type Clock interface {
	Now() time.Time
	// SleepUntil returns when the clock reads t or later, or with
	// ctx.Err() when ctx is done first.
	SleepUntil(ctx context.Context, t time.Time) error
}

// realClock is the wall clock.
type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) SleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Modes of a run.
const (
	ModeClosed = "closed" // fixed concurrency: a worker sends its next request when the last one is answered
	ModeOpen   = "open"   // fixed rate: requests start on a schedule, latency counts from the scheduled start
)

// DefaultLateThreshold is how late after its scheduled time an open-loop
// request may start before it counts as a late start.
const DefaultLateThreshold = time.Millisecond

// Config says how to run a load test.
type Config struct {
	// Concurrency is the number of workers: in the closed loop the
	// requests in flight at all times, in the open loop the most in
	// flight at once. At least 1.
	Concurrency int
	// Rate, when positive, selects the open loop: requests are scheduled
	// Rate per second from the start.
	Rate float64
	// Duration, when positive, ends the run after this long: no request
	// starts (closed loop) or is scheduled (open loop) later; requests in
	// flight are waited for.
	Duration time.Duration
	// Requests, when positive, ends the run after this many requests.
	// Exactly one of Duration and Requests is positive.
	Requests int64
	// SelfTimed makes the engine record the duration each Op returns
	// instead of timing the call.
	SelfTimed bool
	// Clock is the time source; nil means the wall clock.
	Clock Clock
	// Progress, if not nil, is called every ProgressEvery (default 1 s,
	// wall-clock time) from a goroutine of its own while the run lasts.
	Progress      func(Progress)
	ProgressEvery time.Duration
	// LateThreshold is how late an open-loop request may start before it
	// counts in Result.LateStarts; 0 means DefaultLateThreshold.
	LateThreshold time.Duration
}

// Progress is a snapshot of a run in progress.
type Progress struct {
	Elapsed  time.Duration // since the start
	Requests uint64        // completed so far, errors included
	Errors   uint64        // failed so far
	Rate     float64       // successful requests per second over the last interval
	P50, P99 time.Duration // latency percentiles over the last interval (0 when none completed)
	// LateStarts counts the open-loop requests so far that started late
	// (see Result.LateStarts): the generator is behind its schedule.
	LateStarts uint64
}

// Result is what a run measured.
type Result struct {
	Mode        string    // ModeClosed or ModeOpen
	Concurrency int       // workers
	Rate        float64   // scheduled requests per second (open loop)
	Started     time.Time // when the first request could start
	// Elapsed is from the start to the last answer.
	Elapsed time.Duration
	// Latency holds the latencies of the successful requests.
	Latency *Histogram
	// Errors counts failed requests by ErrorKind.
	Errors map[string]int64
	// Interrupted is true when the run's context ended it early; the
	// requests it cut short are not counted.
	Interrupted bool
	// LateStarts counts open-loop requests that started more than the
	// late threshold after their scheduled time, because every worker was
	// busy or the generator could not keep up; MaxStartLag is the largest
	// such delay. Their latencies include the wait.
	LateStarts  int64
	MaxStartLag time.Duration
}

// Successes returns the number of requests that succeeded.
func (r *Result) Successes() int64 { return int64(r.Latency.Count()) }

// ErrorCount returns the number of requests that failed.
func (r *Result) ErrorCount() int64 {
	var n int64
	for _, c := range r.Errors {
		n += c
	}
	return n
}

// Throughput returns successful requests per second.
func (r *Result) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Successes()) / r.Elapsed.Seconds()
}

// worker is one worker's tally. Only the worker writes to it; the
// progress reporter reads the histogram and the error count meanwhile.
type worker struct {
	hist     Histogram
	errCount atomic.Uint64
	errKinds map[string]int64 // read after the run only
	late     atomic.Uint64
	maxLag   time.Duration
	lastEnd  time.Time
}

func (w *worker) record(ctx context.Context, latency time.Duration, err error, end time.Time) {
	if err != nil && ctx.Err() != nil {
		return // cut short by an interruption: neither a success nor the target's failure
	}
	w.lastEnd = end
	if err != nil {
		w.errKinds[ErrorKind(err)]++
		w.errCount.Add(1)
		return
	}
	w.hist.Record(latency)
}

// Run runs op under cfg until the duration or the request count is
// reached or ctx ends, and returns what it measured. It returns an error
// only for an invalid Config.
func Run(ctx context.Context, cfg Config, op Op) (*Result, error) {
	if cfg.Concurrency < 1 {
		return nil, errors.New("loadgen: concurrency must be at least 1")
	}
	if (cfg.Duration > 0) == (cfg.Requests > 0) {
		return nil, errors.New("loadgen: set exactly one of a duration and a request count")
	}
	if cfg.Rate < 0 {
		return nil, errors.New("loadgen: negative rate")
	}
	clock := cfg.Clock
	if clock == nil {
		clock = realClock{}
	}
	late := cfg.LateThreshold
	if late <= 0 {
		late = DefaultLateThreshold
	}

	workers := make([]*worker, cfg.Concurrency)
	for i := range workers {
		workers[i] = &worker{errKinds: map[string]int64{}}
	}
	start := clock.Now()
	var deadline time.Time
	if cfg.Duration > 0 {
		deadline = start.Add(cfg.Duration)
	}

	stopProgress := startProgress(cfg, clock, start, workers)
	var wg sync.WaitGroup
	res := &Result{Mode: ModeClosed, Concurrency: cfg.Concurrency, Started: start}
	if cfg.Rate > 0 {
		res.Mode, res.Rate = ModeOpen, cfg.Rate
		schedule := make(chan time.Time)
		go func() {
			defer close(schedule)
			for i := int64(0); cfg.Requests <= 0 || i < cfg.Requests; i++ {
				at := start.Add(time.Duration(float64(i) * float64(time.Second) / cfg.Rate))
				if !deadline.IsZero() && !at.Before(deadline) {
					return
				}
				if clock.SleepUntil(ctx, at) != nil {
					return
				}
				select {
				case schedule <- at:
				case <-ctx.Done():
					return
				}
			}
		}()
		for i, w := range workers {
			wg.Go(func() {
				for at := range schedule {
					if lag := clock.Now().Sub(at); lag > late {
						w.late.Add(1)
						w.maxLag = max(w.maxLag, lag)
					}
					d, err := op(ctx, i)
					end := clock.Now()
					if !cfg.SelfTimed {
						d = end.Sub(at)
					}
					w.record(ctx, d, err, end)
				}
			})
		}
	} else {
		var started atomic.Int64
		for i, w := range workers {
			wg.Go(func() {
				for ctx.Err() == nil {
					if cfg.Requests > 0 && started.Add(1) > cfg.Requests {
						return
					}
					begin := clock.Now()
					if !deadline.IsZero() && !begin.Before(deadline) {
						return
					}
					d, err := op(ctx, i)
					end := clock.Now()
					if !cfg.SelfTimed {
						d = end.Sub(begin)
					}
					w.record(ctx, d, err, end)
				}
			})
		}
	}
	wg.Wait()
	stopProgress()

	res.Latency = &Histogram{}
	res.Errors = map[string]int64{}
	last := start
	for _, w := range workers {
		res.Latency.Merge(&w.hist)
		for k, n := range w.errKinds {
			res.Errors[k] += n
		}
		res.LateStarts += int64(w.late.Load())
		res.MaxStartLag = max(res.MaxStartLag, w.maxLag)
		if w.lastEnd.After(last) {
			last = w.lastEnd
		}
	}
	res.Elapsed = last.Sub(start)
	res.Interrupted = ctx.Err() != nil
	return res, nil
}

// startProgress calls cfg.Progress every interval until the returned
// function is called.
func startProgress(cfg Config, clock Clock, start time.Time, workers []*worker) (stop func()) {
	if cfg.Progress == nil {
		return func() {}
	}
	every := cfg.ProgressEvery
	if every <= 0 {
		every = time.Second
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		ticker := time.NewTicker(every)
		defer ticker.Stop()
		prev := &Histogram{}
		prevAt := time.Now()
		for {
			select {
			case <-done:
				return
			case now := <-ticker.C:
				cur := &Histogram{}
				var errs, late uint64
				for _, w := range workers {
					cur.Merge(&w.hist)
					errs += w.errCount.Load()
					late += w.late.Load()
				}
				interval := cur.Since(prev)
				p := Progress{
					Elapsed:    clock.Now().Sub(start),
					Requests:   cur.Count() + errs,
					Errors:     errs,
					Rate:       float64(interval.Count()) / now.Sub(prevAt).Seconds(),
					LateStarts: late,
				}
				if interval.Count() > 0 {
					p.P50, p.P99 = interval.Quantile(0.50), interval.Quantile(0.99)
				}
				cfg.Progress(p)
				prev, prevAt = cur, now
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}
