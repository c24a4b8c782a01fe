package mysql

import "github.com/hamal-replication/hamal/engine"

// Driver is the MySQL/MariaDB engine (kind mysql) on both sides.
var Driver = engine.Driver{
	Name:      "mysql",
	NewSource: func() engine.SourceConfig { return &SourceConfig{} },
	NewSink:   func() engine.SinkConfig { return &SinkConfig{} },
}

// DefaultHamalSchema is hamal_schema's default on both sides.
const DefaultHamalSchema = "hamal"
