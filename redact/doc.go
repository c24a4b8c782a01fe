// Package redact removes row data from error messages shown where no
// credential is asked for (the admin API's unauthenticated responses).
// The full text stays in the log and behind the admin token.
//
// Row data reaches error messages through the servers' own texts
// (Duplicate entry '…' for key, Incorrect integer value: '…', MongoDB's
// dup key: { … }) and through Hamal's excerpts of commands and
// statements, which quote their values. Message replaces the contents of
// every quoted string ('…', "…") except one that names a table, column,
// database, schema, index, constraint or plugin (the word before it says
// so), of MongoDB's dup key document, and of long hex literals. It is
// deliberately coarse: a value a message prints without quotes is not
// found, and Hamal's messages quote the values they print.
package redact
