package admin

import (
	_ "embed"
	"net/http"
)

// statusPage is the whole status page: HTML, CSS and script in one file,
// no build step. It polls /status once a second.
//
//go:embed page/index.html
var statusPage []byte

func servePage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	// The page loads nothing from elsewhere; say so to the browser.
	w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'")
	w.Write(statusPage)
}

// migratePage is `hamal migrate start`'s status page: phase, rollback
// readiness, reverse replication, copy, verify and every channel, polled
// from the migration's /status once a second.
//
//go:embed page/migrate.html
var migratePage []byte

// ServeMigratePage serves the migration's status page (GET / of the
// migration's admin API).
func ServeMigratePage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'")
	w.Write(migratePage)
}
