// Package failover builds the failover report (`hamal failover-report`):
// after a source site failed and is back, what it committed past the
// channel's checkpoint that the target does not hold, row by row, for an
// operator to reconcile.
//
// It reads the channel's checkpoint (the channel must be stopped: the
// report opens its checkpoint directory), reads the source's binlog from
// there to its current end, keeps each row's last change (writes this site
// made and the loop guard recognises are not lost writes), and compares
// each with the target's row. The source and the target are reached
// through the MySQL driver (engine/mysql), so the report connects exactly
// as `hamal run` does, TLS included; the report supports MySQL sources and
// sinks only (ErrUnsupported otherwise).
//
// Usage sketch:
//
//	rep, err := failover.Build(ctx, cfg, log)
//	if err != nil { ... }
//	rep.Print(os.Stdout) // or encode rep as JSON
package failover
