//go:build race

package dag

// raceEnabled reports whether the race detector is on; the random-workload
// test shrinks its workloads under it.
const raceEnabled = true
