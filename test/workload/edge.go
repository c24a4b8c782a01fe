package workload

import "strings"

// EdgeTable is a table of the values a copy can lose: FLOAT with more than
// six significant digits (the text protocol and mariadb-dump print six),
// DOUBLE extremes and subnormals, DECIMAL at full width, TIME(3) at its
// limits, BIT of 1, 10 and 64 bits, YEAR 0000, zero dates, TIMESTAMP at
// its limits, latin1 text with every special byte, utf8mb4 beyond the BMP,
// and binary strings holding the bytes LOAD DATA and SQL escape. Its
// charsets are explicit, so it is the same table whatever the server's
// default character set.
const EdgeTable = `CREATE TABLE %s (
	id INT PRIMARY KEY,
	f FLOAT, d DOUBLE, de DECIMAL(65,30), de0 DECIMAL(10,0),
	t3 TIME(3), b1 BIT(1), b10 BIT(10), b64 BIT(64), y YEAR,
	da DATE, dt DATETIME(6), ts TIMESTAMP(6) NULL DEFAULT NULL,
	l1 VARCHAR(40) CHARACTER SET latin1, u VARCHAR(40) CHARACTER SET utf8mb4,
	vb VARBINARY(40), bl BLOB, e ENUM('a','b') CHARACTER SET latin1, st SET('x','y') CHARACTER SET latin1
) DEFAULT CHARSET=latin1`

// EdgeRows are the rows of EdgeTable, as one VALUES list.
var EdgeRows = strings.Join([]string{
	`(1, 16777216, 0.1e0 + 0.2e0, '99999999999999999999999999999999999.999999999999999999999999999999', 9999999999,
	  '-838:59:59.999', b'1', b'1010101010', b'1111111111111111111111111111111111111111111111111111111111111111', 0,
	  '0000-00-00', '1000-01-01 00:00:00.000000', '1970-01-01 00:00:01.000000',
	  X'090A5C002722E9FF80', '😀 ünï \\ \t', X'000A095C2722FF', X'00FF5C0A09', 'a', 'x,y')`,
	`(2, 1.2345678, 1.7976931348623157e308, '-0.000000000000000000000000000001', -9999999999,
	  '838:59:59.999', b'0', b'0', b'0', 2155,
	  '9999-12-31', '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07.999999',
	  '', '', X'', X'', 'b', '')`,
	`(3, 3.4028234663852886e38, 4.9406564584124654e-324, '0.000000000000000000000000000000', 0,
	  '-00:00:00.001', NULL, b'1000000000', b'1000000000000000000000000000000000000000000000000000000000000000', 1901,
	  '2024-02-29', '2024-06-30 12:34:56.000001', '2024-06-30 12:34:56.123456',
	  '\\N', 'tab	and
newline', X'5C4E', REPEAT(X'00FF', 3000), NULL, NULL)`,
	`(4, -1.17549435e-38, 2.2250738585072014e-308, '12345678901234567890.123456789012345678901234567890', 1,
	  '00:00:00.000', b'1', b'1111111111', b'0000000000000000000000000000000000000000000000000000000000000001', 2000,
	  '1000-01-01', '2000-01-01 00:00:00.000000', NULL,
	  NULL, NULL, NULL, NULL, NULL, NULL)`,
	`(5, 1.401298464324817e-45, -1e-300, '-1.5', -1, '12:34:56.789', NULL, NULL, NULL, NULL,
	  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`,
	`(6, 0.1, 123456789012345678e0, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
	  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`,
}, ",\n")

// EdgeExact is a SELECT list showing every EdgeTable column exactly: FLOAT
// as its DOUBLE value (its own text has six digits), everything else by
// its bytes in hex. Equal lists mean equal values.
const EdgeExact = `id, CAST(f + 0E0 AS CHAR), CAST(d AS CHAR), CAST(de AS CHAR), de0, CAST(t3 AS CHAR),
	HEX(b1), HEX(b10), HEX(b64), CAST(y AS CHAR), CAST(da AS CHAR), CAST(dt AS CHAR), CAST(ts AS CHAR),
	HEX(l1), HEX(u), HEX(vb), MD5(bl), HEX(e), HEX(st)`
