package loadgen

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// Layout of a Histogram's buckets, in nanoseconds. Values below
// 2^(subBits+1) ns have a bucket each; above that, every power of two is
// split into 2^subBits buckets of equal width (the log-linear layout of
// HdrHistogram), so a bucket is at most 1/128 of its values wide and the
// value reported for it, its midpoint, is within 0.4% of every value it
// holds. Values of maxTrackable or more go to the last bucket (the exact
// maximum is kept apart).
const (
	subBits      = 7
	subCount     = 1 << subBits                             // buckets per power of two
	topExp       = 36                                       // 2^36 ns ≈ 68.7 s
	maxTrackable = int64(1)<<topExp - 1                     // largest value with its own bucket
	numBuckets   = 2*subCount + (topExp-subBits-1)*subCount // 3840
	linearLimit  = int64(2 * subCount)                      // values below this have a bucket each
)

// bucketOf returns the index of the bucket holding v ns (0 ≤ v ≤
// maxTrackable).
func bucketOf(v int64) int {
	if v < linearLimit {
		return int(v)
	}
	exp := bits.Len64(uint64(v)) - 1 // v is in [2^exp, 2^(exp+1))
	shift := exp - subBits
	return (shift+1)*subCount + int(v>>shift) - subCount
}

// bucketBounds returns the smallest value of bucket i and the width of
// the bucket.
func bucketBounds(i int) (low, width int64) {
	if i < int(linearLimit) {
		return int64(i), 1
	}
	shift := i/subCount - 1
	sub := int64(i%subCount + subCount)
	return sub << shift, int64(1) << shift
}

// A Histogram counts latencies in fixed, log-linear buckets from 1 ns to
// about 68 s with a relative precision better than 1% (0.4%: a bucket's
// midpoint stands for its values), in a fixed 30 KiB. Longer values are
// counted in the top bucket; the exact minimum and maximum are kept.
//
// Every method is safe for concurrent use and lock-free: a worker records
// into its own Histogram with uncontended atomic additions while a
// reporter reads or merges it. A quantile read while values are being
// recorded sees some of them and not others. The zero value is empty and
// ready to use.
type Histogram struct {
	counts [numBuckets]atomic.Uint64
	total  atomic.Uint64
	sum    atomic.Uint64 // ns; wraps after 584 years of summed latency
	min    atomic.Int64  // ns + 1, 0 when empty
	max    atomic.Int64  // ns
}

// Record counts one latency d. Negative durations count as 0.
func (h *Histogram) Record(d time.Duration) {
	v := max(int64(d), 0)
	h.counts[bucketOf(min(v, maxTrackable))].Add(1)
	h.total.Add(1)
	h.sum.Add(uint64(v))
	h.raiseMax(v)
	h.lowerMin(v)
}

func (h *Histogram) raiseMax(v int64) {
	for {
		old := h.max.Load()
		if v <= old || h.max.CompareAndSwap(old, v) {
			return
		}
	}
}

func (h *Histogram) lowerMin(v int64) {
	for {
		old := h.min.Load()
		if (old != 0 && v+1 >= old) || h.min.CompareAndSwap(old, v+1) {
			return
		}
	}
}

// Merge adds every count of o to h. o may be recorded into meanwhile.
func (h *Histogram) Merge(o *Histogram) {
	n := o.total.Load()
	if n == 0 {
		return
	}
	for i := range o.counts {
		if c := o.counts[i].Load(); c != 0 {
			h.counts[i].Add(c)
		}
	}
	h.total.Add(n)
	h.sum.Add(o.sum.Load())
	h.raiseMax(o.max.Load())
	if m := o.min.Load(); m != 0 {
		h.lowerMin(m - 1)
	}
}

// Since returns the values of h recorded after prev was taken, where prev
// is an earlier copy of h (made with Merge into an empty Histogram):
// each count of prev is taken from h's. Min and Max of the result are
// those of h, not of the interval.
func (h *Histogram) Since(prev *Histogram) *Histogram {
	d := &Histogram{}
	var total uint64
	for i := range h.counts {
		c := h.counts[i].Load() - prev.counts[i].Load()
		if c != 0 {
			d.counts[i].Store(c)
			total += c
		}
	}
	d.total.Store(total)
	d.sum.Store(h.sum.Load() - prev.sum.Load())
	d.max.Store(h.max.Load())
	d.min.Store(h.min.Load())
	return d
}

// Count returns the number of values recorded.
func (h *Histogram) Count() uint64 { return h.total.Load() }

// Max returns the largest value recorded, exactly, or 0 if none was.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max.Load()) }

// Min returns the smallest value recorded, exactly, or 0 if none was.
func (h *Histogram) Min() time.Duration {
	if m := h.min.Load(); m != 0 {
		return time.Duration(m - 1)
	}
	return 0
}

// Mean returns the arithmetic mean of the values recorded, exactly, or 0
// if none was.
func (h *Histogram) Mean() time.Duration {
	n := h.total.Load()
	if n == 0 {
		return 0
	}
	return time.Duration(h.sum.Load() / n)
}

// Quantile returns the value below or at which a fraction q (0 to 1) of
// the recorded values lie: the midpoint of the bucket holding the value of
// rank ⌈q·count⌉, kept within Min and Max. Quantile(1) is Max. It returns
// 0 for an empty histogram.
func (h *Histogram) Quantile(q float64) time.Duration {
	n := h.total.Load()
	if n == 0 {
		return 0
	}
	if q >= 1 {
		return h.Max()
	}
	rank := uint64(math.Ceil(q * float64(n)))
	rank = max(rank, 1)
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			low, width := bucketBounds(i)
			v := time.Duration(low + (width-1)/2)
			return min(max(v, h.Min()), h.Max())
		}
	}
	return h.Max() // counts raced ahead of total
}
