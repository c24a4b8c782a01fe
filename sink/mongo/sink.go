package mongo

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/retry"
	"github.com/hamal-replication/hamal/sink"
)

// Config configures a Sink.
type Config struct {
	URI string // mongodb://… connection string
	// TLS, when set, encrypts every connection to the target (the
	// connection string then sets no TLS options of its own).
	TLS *tls.Config
	// Site, when set, turns on the loop guard's origin marker: on a
	// replica-set target every batch is one transaction that also upserts
	// the batch's path into hamal.origin_marker (see marker.go).
	Site string
	// Channel names the marker, fence and lease documents (the channel's
	// name).
	Channel string
	Logger  *slog.Logger
	// SkipLease opens without the lease, for checks next to a running
	// channel (hamal check). Such a sink must not Apply.
	SkipLease bool
	// LeaseTTL is how long a successor waits for a holder that stopped
	// renewing the lease (default 10 s; see lease.go).
	LeaseTTL time.Duration
}

// Sink applies Txns to MongoDB.
type Sink struct {
	client *mongo.Client
	log    *slog.Logger
	cfg    Config
	// transactions is set when units are transactions (the target is a
	// replica set): the lease proof and, with Site, the origin marker
	// commit with the data.
	transactions bool
	slots        slotPool
	lease        *lease // nil with SkipLease
	closed       atomic.Bool
}

var _ sink.Sink = (*Sink)(nil)

// Open connects, pings the deployment and takes the channel's lease
// (ErrLeaseHeld while another process holds it).
func Open(ctx context.Context, cfg Config) (*Sink, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts := options.Client().ApplyURI(cfg.URI).SetServerSelectionTimeout(10 * time.Second)
	if cfg.TLS != nil {
		opts.SetTLSConfig(cfg.TLS)
	}
	client, err := mongo.Connect(opts)
	if err != nil {
		return nil, fmt.Errorf("mongo %s: %w", redact(cfg.URI), err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := client.Ping(pctx, nil); err != nil {
		_ = client.Disconnect(context.Background())
		return nil, retry.Transient(fmt.Errorf("mongo %s: ping: %w", redact(cfg.URI), err))
	}
	s := &Sink{client: client, log: log, cfg: cfg}
	hello, err := client.Database("admin").RunCommand(pctx, bson.D{{Key: "hello", Value: 1}}).Raw()
	if err != nil {
		_ = client.Disconnect(context.Background())
		return nil, retry.Transient(fmt.Errorf("mongo %s: hello: %w", redact(cfg.URI), err))
	}
	s.transactions = isReplicaSet(hello)
	if !s.transactions && !cfg.SkipLease {
		msg := "the MongoDB target is not a replica set: batches are applied without a transaction, so the lease is checked before each batch rather than proved inside it (a process that lost its lease may still land the batch it is writing)"
		if cfg.Site != "" {
			msg += ", and without the origin marker, so this channel's writes are not recognised as coming from their origin (loop prevention needs a replica-set target)"
		}
		log.Warn(msg, "uri", redact(cfg.URI))
	}
	if !cfg.SkipLease {
		ttl := cfg.LeaseTTL
		if ttl <= 0 {
			ttl = defaultLeaseTTL
		}
		l, err := acquireLease(ctx, client, s.channel(), ttl, log)
		if err != nil {
			_ = client.Disconnect(context.Background())
			if errors.Is(err, ErrLeaseHeld) {
				return nil, err
			}
			return nil, leaseTransient(fmt.Errorf("mongo %s: %w", redact(cfg.URI), err))
		}
		s.lease = l
	}
	return s, nil
}

// isReplicaSet reports whether a hello reply comes from a replica-set
// member (it names its set), the deployments where transactions run.
func isReplicaSet(hello bson.Raw) bool {
	name, ok := hello.Lookup("setName").StringValueOK()
	return ok && name != ""
}

// Transactions reports whether batches are applied in a transaction with
// the origin marker.
func (s *Sink) Transactions() bool { return s.transactions }

// redact drops the password from a connection string for messages.
func redact(uri string) string {
	at := strings.LastIndexByte(uri, '@')
	scheme := strings.Index(uri, "://")
	if at < 0 || scheme < 0 || at < scheme {
		return uri
	}
	creds := uri[scheme+3 : at]
	if colon := strings.IndexByte(creds, ':'); colon >= 0 {
		return uri[:scheme+3] + creds[:colon] + ":***" + uri[at:]
	}
	return uri
}

// Close releases the lease and disconnects; call it after the last Apply
// returned. Calls after the first do nothing.
func (s *Sink) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	if s.lease != nil {
		s.lease.release()
	}
	return s.client.Disconnect(context.Background())
}

// write is the net effect of a batch on one document.
type write struct {
	id  any    // _id value
	doc any    // full document; nil for a delete
	key string // canonical _id bytes, for folding
}

type nsWrites struct {
	db, coll string
	order    []string
	byKey    map[string]*write
}

// plan reduces a batch to its net writes per namespace, in first-seen
// order. It refuses DDL (a barrier must come alone) and changes it cannot
// turn into documents.
func plan(batch []*event.Txn) ([]*nsWrites, error) {
	var nss []*nsWrites
	index := map[string]*nsWrites{}
	for _, txn := range batch {
		switch txn.Kind {
		case event.KindHeartbeat:
			continue
		case event.KindDDL:
			stmt := ""
			if txn.DDL != nil {
				stmt = txn.DDL.Statement
			}
			return nil, fmt.Errorf("apply batch at %s: DDL %q in a batch of %d Txns; a barrier must be applied alone", txn.Pos, stmt, len(batch))
		}
		for i := range txn.Changes {
			c := &txn.Changes[i]
			ws, err := changeWrites(c)
			if err != nil {
				return nil, fmt.Errorf("apply batch at %s: %s: %w", txn.Pos, c.Namespace, err)
			}
			for _, w := range ws {
				db, coll, ok := strings.Cut(c.Namespace, ".")
				if !ok || db == "" || coll == "" {
					return nil, fmt.Errorf("apply batch at %s: namespace %q is not db.collection", txn.Pos, c.Namespace)
				}
				if db == HamalDB {
					return nil, fmt.Errorf("apply batch at %s: namespace %q is in Hamal's own database, which is never replicated as data", txn.Pos, c.Namespace)
				}
				n := index[c.Namespace]
				if n == nil {
					n = &nsWrites{db: db, coll: coll, byKey: map[string]*write{}}
					index[c.Namespace] = n
					nss = append(nss, n)
				}
				if _, seen := n.byKey[w.key]; !seen {
					n.order = append(n.order, w.key)
				}
				n.byKey[w.key] = w
			}
		}
	}
	return nss, nil
}

// models is the namespace's bulk write: replace-with-upsert or delete by
// _id, one per document.
func (n *nsWrites) models() []mongo.WriteModel {
	models := make([]mongo.WriteModel, 0, len(n.order))
	for _, k := range n.order {
		w := n.byKey[k]
		filter := bson.D{{Key: "_id", Value: w.id}}
		if w.doc == nil {
			models = append(models, mongo.NewDeleteOneModel().SetFilter(filter))
		} else {
			models = append(models, mongo.NewReplaceOneModel().SetFilter(filter).SetReplacement(w.doc).SetUpsert(true))
		}
	}
	return models
}

// changeWrites turns one change into the writes it implies, in order.
func changeWrites(c *event.Change) ([]*write, error) {
	if c.Table == nil {
		return documentWrites(c)
	}
	rowKey, ok := c.Table.RowKey()
	if !ok {
		return nil, errors.New("table has neither a primary key nor a NOT NULL unique key, so its rows have no _id")
	}
	var out []*write
	if c.Before != nil && (c.Op == event.OpDelete || c.Op == event.OpUpdate) {
		id, key, err := rowID(c.Table, rowKey, c.Before)
		if err != nil {
			return nil, err
		}
		out = append(out, &write{id: id, key: key})
	}
	if c.After != nil && c.Op != event.OpDelete {
		id, key, err := rowID(c.Table, rowKey, c.After)
		if err != nil {
			return nil, err
		}
		doc, err := rowDocument(c.Table, id, c.After)
		if err != nil {
			return nil, err
		}
		if len(out) == 1 && out[0].key == key {
			out = out[:0] // key unchanged: the replace alone
		}
		out = append(out, &write{id: id, doc: doc, key: key})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s change without the image it needs", c.Op)
	}
	return out, nil
}

// documentWrites handles a change of a MongoDB source.
func documentWrites(c *event.Change) ([]*write, error) {
	switch c.Op {
	case event.OpInsert, event.OpUpdate:
		if len(c.After) != 1 {
			return nil, errors.New("document change without a full document (After[0])")
		}
		doc, ok := c.After[0].(bson.Raw)
		if !ok {
			return nil, fmt.Errorf("document change holds %T, want bson.Raw", c.After[0])
		}
		idv, err := doc.LookupErr("_id")
		if err != nil {
			return nil, errors.New("document has no _id")
		}
		return []*write{{id: idv, doc: doc, key: idKey(idv)}}, nil
	case event.OpDelete:
		if len(c.Before) != 1 {
			return nil, errors.New("delete without a document key (Before[0])")
		}
		key, ok := c.Before[0].(bson.Raw)
		if !ok {
			return nil, fmt.Errorf("delete holds %T, want bson.Raw", c.Before[0])
		}
		idv, err := key.LookupErr("_id")
		if err != nil {
			return nil, errors.New("document key has no _id")
		}
		return []*write{{id: idv, key: idKey(idv)}}, nil
	}
	return nil, fmt.Errorf("operation %s cannot be applied to MongoDB", c.Op)
}

// idKey is the canonical form of an _id for folding: its BSON type and
// bytes.
func idKey(v bson.RawValue) string { return string(rune(v.Type)) + string(v.Value) }

// rowID builds the _id of a row: the key column's value, or a document of
// the key columns.
func rowID(t *event.Table, cols []int, image []any) (any, string, error) {
	if len(image) != len(t.Columns) {
		return nil, "", fmt.Errorf("row image has %d values for %d columns", len(image), len(t.Columns))
	}
	var id any
	if len(cols) == 1 {
		v, err := toBSON(t.Columns[cols[0]], image[cols[0]])
		if err != nil {
			return nil, "", err
		}
		id = v
	} else {
		d := make(bson.D, 0, len(cols))
		for _, ci := range cols {
			v, err := toBSON(t.Columns[ci], image[ci])
			if err != nil {
				return nil, "", err
			}
			d = append(d, bson.E{Key: t.Columns[ci].Name, Value: v})
		}
		id = d
	}
	raw, err := bson.Marshal(bson.D{{Key: "_id", Value: id}})
	if err != nil {
		return nil, "", fmt.Errorf("_id: %w", err)
	}
	return id, idKey(bson.Raw(raw).Lookup("_id")), nil
}

func rowDocument(t *event.Table, id any, image []any) (bson.D, error) {
	d := make(bson.D, 0, len(t.Columns)+1)
	d = append(d, bson.E{Key: "_id", Value: id})
	for i, c := range t.Columns {
		v, err := toBSON(c, image[i])
		if err != nil {
			return nil, err
		}
		d = append(d, bson.E{Key: c.Name, Value: v})
	}
	return d, nil
}

// toBSON converts a MySQL value as go-mysql decodes it (see the package
// doc's table).
func toBSON(c event.Column, v any) (any, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case int8:
		return int64(x), nil
	case int16:
		return int64(x), nil
	case int32:
		return int64(x), nil
	case int:
		return int64(x), nil
	case int64:
		return x, nil
	case uint8:
		return int64(x), nil
	case uint16:
		return int64(x), nil
	case uint32:
		return int64(x), nil
	case uint:
		return toBSON(c, uint64(x))
	case uint64:
		if x <= math.MaxInt64 {
			return int64(x), nil
		}
		d, err := bson.ParseDecimal128(strconv.FormatUint(x, 10))
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", c.Name, err)
		}
		return d, nil
	case float32:
		f, _ := strconv.ParseFloat(strconv.FormatFloat(float64(x), 'g', -1, 32), 64)
		return f, nil
	case float64:
		return x, nil
	case bool:
		return x, nil
	case string:
		return textValue(c, x), nil
	case []byte:
		return textValue(c, string(x)), nil
	}
	return nil, fmt.Errorf("column %s: unsupported value type %T", c.Name, v)
}

func textValue(c event.Column, s string) any {
	if c.Type == gomysql.MYSQL_TYPE_NEWDECIMAL || c.Type == gomysql.MYSQL_TYPE_DECIMAL {
		if d, err := bson.ParseDecimal128(s); err == nil {
			return d
		}
		return s
	}
	if c.Binary || !utf8.ValidString(s) {
		return bson.Binary{Subtype: 0, Data: []byte(s)}
	}
	return s
}

// transient reports whether err may go away on a retry: the server was
// unreachable, or it labelled the error retryable.
func transient(err error) bool {
	if mongo.IsNetworkError(err) || mongo.IsTimeout(err) || errors.Is(err, mongo.ErrClientDisconnected) {
		return true
	}
	var labeled interface{ HasErrorLabel(string) bool }
	return errors.As(err, &labeled) && (labeled.HasErrorLabel("RetryableWriteError") || labeled.HasErrorLabel("TransientTransactionError"))
}
