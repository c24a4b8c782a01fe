package admin

import (
	"crypto/subtle"
	_ "embed"
	"net/http"
	"strings"
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

// requireToken wraps a mutating endpoint: with a token configured, the
// request must carry it as "Authorization: Bearer <token>".
func requireToken(token string, next http.HandlerFunc) http.Handler {
	if token == "" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="hamal"`)
			http.Error(w, "admin.token is set: send Authorization: Bearer <token>", http.StatusUnauthorized)
			return
		}
		next(w, r)
	})
}
