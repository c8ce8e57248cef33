// Package bench holds side-by-side benchmarks of Keycard's jose/jwt packages
// against peer Go JWT libraries and a standard-library floor.
package bench
