package e2e

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hamal-replication/hamal/pipeline"
	"github.com/hamal-replication/hamal/test/harness"
)

// TestKafkaTLSAndSASL replicates MariaDB → hamal → Kafka → hamal →
// MariaDB through a broker process (kfake) that takes TLS only and SCRAM
// logins, the broker's certificate verified; kcat (librdkafka) reads the
// topic over SASL_SSL too. Another CA, a wrong password and TLS against a
// plain broker are refused, with hamal check and hamal run naming the
// cause; a source.tables filter keeps a table the topic carries off the
// target.
func TestKafkaTLSAndSASL(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: skipped with -short")
	}
	const pw = "kafka-scram-pw-9"
	good, other := harness.TLSCerts(t, "kafka"), harness.TLSCerts(t, "other")
	broker := harness.StartKafkaBroker(t, "../..", harness.KafkaBrokerOptions{TLS: good, Users: []string{"SCRAM-SHA-512:hamal:" + pw},
		AutoCreate: true, Partitions: 2})
	plain := harness.StartKafkaBroker(t, "../..", harness.KafkaBrokerOptions{Users: []string{"SCRAM-SHA-512:hamal:" + pw}, AutoCreate: true})
	src, dst := startPair(t)
	for _, s := range []*harness.Server{src, dst} {
		s.MustExec(t, "CREATE TABLE app.kt (id INT PRIMARY KEY, v VARCHAR(20))", "CREATE TABLE app.kept_off (id INT PRIMARY KEY)")
	}
	kafkaSink := func(brokerAddr, ca, password string) string {
		return fmt.Sprintf(`  kind: kafka
  tls: {ca: %s}
  kafka:
    brokers: [%q]
    site: sz
    auto_create_topics: true
    sasl: {mechanism: SCRAM-SHA-512, user: hamal, password: %s}
`, ca, brokerAddr, password)
	}
	mysqlSource := fmt.Sprintf(`  kind: mysql
  addr: %s
  user: root
  password: ""
  server_id: 4949
  start: current
  tables: ["app.kt", "app.kept_off"]
`, src.Addr)

	up := newKafkaChannel(t, "tls-up", mysqlSource, kafkaSink(broker, good.CA, pw))
	if out, code := hamalCmd(t, "check", "--config", up.path); code != 0 || !strings.Contains(out, "reachable over TLS with SASL SCRAM-SHA-512") {
		t.Fatalf("hamal check: exit %d\n%s", code, out)
	}
	down := newKafkaChannel(t, "tls-down", fmt.Sprintf(`  kind: kafka
  tls: {ca: %s}
  tables: ["app.kt"]
  kafka:
    brokers: [%q]
    topics: ["hamal.app.*"]
    rescan: 300ms
    sasl: {mechanism: SCRAM-SHA-512, user: hamal, password: %s}
`, good.CA, broker, pw), fmt.Sprintf(`  kind: mysql
  addr: %s
  user: root
  password: ""
`, dst.Addr))
	up.startRunning(t)
	down.startRunning(t)
	var stmts []string
	for i := 1; i <= 40; i++ {
		stmts = append(stmts, fmt.Sprintf("INSERT INTO app.kt VALUES (%d, 'tls %d')", i, i), fmt.Sprintf("INSERT INTO app.kept_off VALUES (%d)", i))
	}
	src.MustExec(t, append(stmts, "UPDATE app.kt SET v = 'changed' WHERE id <= 5", "DELETE FROM app.kt WHERE id > 35")...)
	waitTablesEqual(t, src, dst, map[string]string{"app.kt": "id"}, 2*time.Minute)
	if rows := dst.MustQuery(t, "SELECT COUNT(*) FROM app.kept_off"); rows[0][0] != "0" {
		t.Errorf("app.kept_off got %s rows on the target: source.tables did not hold", rows[0][0])
	}
	if _, err := exec.LookPath("kcat"); err == nil {
		out, err := exec.Command("kcat", "-b", broker, "-X", "security.protocol=SASL_SSL", "-X", "sasl.mechanisms=SCRAM-SHA-512",
			"-X", "sasl.username=hamal", "-X", "sasl.password="+pw, "-X", "ssl.ca.location="+good.CA,
			"-C", "-t", "hamal.app.kt", "-o", "beginning", "-e", "-q", "-f", "%s\n").CombinedOutput()
		if err != nil || strings.Count(string(out), `"table":"kt"`) < 40 {
			t.Errorf("kcat over SASL_SSL read %d envelopes of app.kt (%v):\n%.2000s", strings.Count(string(out), `"table":"kt"`), err, out)
		}
	} else {
		t.Log("kcat not installed (Debian: apt-get install -y kcat): librdkafka interop not checked")
	}

	for _, tc := range []struct {
		name  string
		sink  string
		fatal bool
		want  []string
	}{
		{"another CA", kafkaSink(broker, other.CA, pw), true, []string{"not signed by a CA Hamal trusts", "sink.tls.ca"}},
		{"TLS against a plain broker", kafkaSink(plain, good.CA, pw), false, []string{"no TLS answer", "sink.tls"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newKafkaChannel(t, "tls-bad", mysqlSource, tc.sink)
			out, code := hamalCmd(t, "check", "--config", c.path)
			if code != 1 || !containsAll(out, tc.want) || strings.Contains(out, "Kafka brokers "+broker+" reachable") {
				t.Errorf("hamal check: exit %d, want 1 naming %q\n%s", code, tc.want, out)
			}
			c.start(t)
			st := c.waitState(t, time.Minute, func(st pipeline.Status) bool {
				return st.State == pipeline.StateError || (!tc.fatal && st.State == pipeline.StateRetrying && st.LastError != "")
			})
			if tc.fatal != (st.State == pipeline.StateError) || !containsAll(st.LastError, tc.want) {
				t.Errorf("state %s, last error %q; want fatal %v naming %q", st.State, st.LastError, tc.fatal, tc.want)
			}
		})
	}
}
