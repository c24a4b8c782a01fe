//go:build !unix

package dag

import "time"

func processCPUTime() (time.Duration, bool) { return 0, false }
