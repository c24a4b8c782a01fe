// Package fakemysql is a scripted MySQL server for tests of what a client
// sends during the login: it greets, runs one login script per
// connection and records every byte the client sent on the wire (below
// TLS, when the client asks for TLS).
package fakemysql
