package mongo

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/hamal-replication/hamal/event"
	"github.com/hamal-replication/hamal/retry"
)

// driverCursor adapts *mongo.ChangeStream to cursor.
type driverCursor struct{ cs *mongo.ChangeStream }

func (d driverCursor) TryNext(ctx context.Context) bool { return d.cs.TryNext(ctx) }
func (d driverCursor) Current() bson.Raw                { return d.cs.Current }
func (d driverCursor) ResumeToken() bson.Raw            { return d.cs.ResumeToken() }
func (d driverCursor) Err() error                       { return d.cs.Err() }
func (d driverCursor) Close(ctx context.Context) error  { return d.cs.Close(ctx) }

// Open connects to the deployment and starts reading its change stream at
// resume (nil: cfg.Start).
func Open(ctx context.Context, cfg Config, resume event.Position) (*Source, error) {
	var from Position
	if resume != nil {
		p, err := DecodePosition(resume)
		if err != nil {
			return nil, err
		}
		from = p
	} else if cfg.Start != "" && cfg.Start != "current" {
		if _, err := ParseClusterTime(cfg.Start); err != nil {
			return nil, fmt.Errorf("mongo source: start: %w", err)
		}
		from = Position{ClusterTime: cfg.Start}
	}
	client, err := mongo.Connect(clientOptions(cfg))
	if err != nil {
		return nil, fmt.Errorf("source mongo %s: %w; check source.mongo.uri", redact(cfg.URI), err)
	}
	classify := func(err error) error { return classifyErr(cfg.URI, err) }
	open := func(ctx context.Context, from Position) (cursor, error) {
		opts := options.ChangeStream().SetFullDocument(options.UpdateLookup).SetMaxAwaitTime(time.Second)
		if cfg.PreImages {
			opts.SetFullDocumentBeforeChange(options.WhenAvailable)
		}
		switch {
		case len(from.Token) > 0 && from.StartAfter:
			opts.SetStartAfter(bson.Raw(from.Token))
		case len(from.Token) > 0:
			opts.SetResumeAfter(bson.Raw(from.Token))
		case from.ClusterTime != "":
			ts, err := ParseClusterTime(from.ClusterTime)
			if err != nil {
				return nil, err
			}
			opts.SetStartAtOperationTime(&ts)
		}
		var cs *mongo.ChangeStream
		var err error
		switch {
		case cfg.Collection != "":
			cs, err = client.Database(cfg.Database).Collection(cfg.Collection).Watch(ctx, mongo.Pipeline{}, opts)
		case cfg.Database != "":
			cs, err = client.Database(cfg.Database).Watch(ctx, mongo.Pipeline{}, opts)
		default:
			cs, err = client.Watch(ctx, mongo.Pipeline{}, opts)
		}
		if err != nil {
			return nil, classifyErr(cfg.URI, fmt.Errorf("open change stream at %s: %w", from, err))
		}
		return driverCursor{cs}, nil
	}
	cp := &driverCopier{client: client, cfg: cfg}
	copying := cfg.InitialSync && len(from.Token) == 0 && from.ClusterTime == "" || from.Snapshot
	// Open the first stream here, so that a bad URI, missing privileges or
	// a lost resume token are reported by Open. Before an initial sync the
	// stream starts at a cluster time read later, so this one only checks.
	first, err := open(ctx, from)
	if err != nil {
		_ = client.Disconnect(context.Background())
		return nil, err
	}
	if copying {
		_ = first.Close(ctx)
		first = nil
	} else if len(from.Token) == 0 && from.ClusterTime == "" {
		// Starting at "current": the stream's initial post-batch resume
		// token names that point, so the engine can pin it before the first
		// event (a crash then resumes there, not at a later "current").
		if tok := first.ResumeToken(); len(tok) > 0 {
			from = Position{Token: append([]byte(nil), tok...)}
		}
	}
	s := newSource(cfg, func(ctx context.Context, from2 Position) (cursor, error) {
		if first != nil {
			c := first
			first = nil
			return c, nil
		}
		return open(ctx, from2)
	}, cp, classify, from)
	s.closer = func() { _ = client.Disconnect(context.Background()) }
	return s, nil
}

// driverCopier reads the collections in scope for the initial sync.
type driverCopier struct {
	client *mongo.Client
	cfg    Config
}

func (d *driverCopier) ClusterTime(ctx context.Context) (bson.Timestamp, error) {
	raw, err := d.client.Database("admin").RunCommand(ctx, bson.D{{Key: "ping", Value: 1}}).Raw()
	if err != nil {
		return bson.Timestamp{}, err
	}
	v, err := raw.LookupErr("operationTime")
	if err != nil {
		return bson.Timestamp{}, errors.New("the server reported no operationTime (not a replica set?)")
	}
	t, i, ok := v.TimestampOK()
	if !ok {
		return bson.Timestamp{}, fmt.Errorf("operationTime is a %s", v.Type)
	}
	return bson.Timestamp{T: t, I: i}, nil
}

func (d *driverCopier) Collections(ctx context.Context) ([]string, error) {
	dbs := []string{d.cfg.Database}
	if d.cfg.Database == "" {
		names, err := d.client.ListDatabaseNames(ctx, bson.D{})
		if err != nil {
			return nil, err
		}
		dbs = dbs[:0]
		for _, n := range names {
			if n != "admin" && n != "local" && n != "config" && n != HamalDB {
				dbs = append(dbs, n)
			}
		}
	}
	var out []string
	for _, db := range dbs {
		if d.cfg.Collection != "" {
			out = append(out, db+"."+d.cfg.Collection)
			continue
		}
		specs, err := d.client.Database(db).ListCollectionSpecifications(ctx, bson.D{{Key: "type", Value: "collection"}})
		if err != nil {
			return nil, err
		}
		for _, sp := range specs {
			if !strings.HasPrefix(sp.Name, "system.") {
				out = append(out, db+"."+sp.Name)
			}
		}
	}
	return out, nil
}

// Scan reads ns in one cursor sorted by _id (not in pages by _id range:
// $gt on _id does not cross BSON types, so mixed-type _ids would be
// skipped).
func (d *driverCopier) Scan(ctx context.Context, ns string, fn func(bson.Raw) error) error {
	db, coll, _ := strings.Cut(ns, ".")
	cur, err := d.client.Database(db).Collection(coll).Find(ctx, bson.D{},
		options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetBatchSize(1000))
	if err != nil {
		return err
	}
	defer cur.Close(context.Background())
	for cur.Next(ctx) {
		if err := fn(cur.Current); err != nil {
			return err
		}
	}
	return cur.Err()
}

// Error codes of change streams that a retry cannot fix.
const (
	codeHistoryLost  = 286 // ChangeStreamHistoryLost: the resume point left the oplog
	codeFatal        = 280 // ChangeStreamFatalError
	codeUnauthorized = 13
)

func classifyErr(uri string, err error) error {
	where := "source mongo " + redact(uri)
	var se mongo.ServerError
	if errors.As(err, &se) {
		switch {
		case se.HasErrorCode(codeHistoryLost):
			return fmt.Errorf("%s: %w; the checkpoint's resume point is no longer in the oplog: resync the target and delete the channel's checkpoint, or give the oplog more room", where, err)
		case se.HasErrorCode(codeUnauthorized):
			return fmt.Errorf("%s: %w; the user needs the changeStream and find actions on the watched scope", where, err)
		case se.HasErrorCode(codeFatal):
			return fmt.Errorf("%s: %w", where, err)
		}
	}
	if mongo.IsNetworkError(err) || mongo.IsTimeout(err) || errors.Is(err, context.DeadlineExceeded) ||
		strings.Contains(err.Error(), "server selection") {
		return retry.Transient(fmt.Errorf("%s unreachable: %w", where, err))
	}
	return fmt.Errorf("%s: %w", where, err)
}

// clientOptions are the driver's options for cfg: its connection string
// and, with cfg.TLS, TLS on every connection.
func clientOptions(cfg Config) *options.ClientOptions {
	o := options.Client().ApplyURI(cfg.URI).SetServerSelectionTimeout(10 * time.Second)
	if cfg.TLS != nil {
		o.SetTLSConfig(cfg.TLS)
	}
	return o
}

// redact drops the password from a connection string for messages.
func redact(uri string) string {
	scheme := strings.Index(uri, "://")
	at := strings.LastIndexByte(uri, '@')
	if scheme < 0 || at < scheme {
		return uri
	}
	creds := uri[scheme+3 : at]
	if colon := strings.IndexByte(creds, ':'); colon >= 0 {
		return uri[:scheme+3] + creds[:colon] + ":***" + uri[at:]
	}
	return uri
}

// Check verifies that uri names a deployment with change streams: a
// replica set member or a mongos, and that a change stream opens on the
// scope with the given credentials.
func Check(ctx context.Context, cfg Config) (string, error) {
	client, err := mongo.Connect(clientOptions(cfg))
	if err != nil {
		return "", fmt.Errorf("source mongo %s: %w", redact(cfg.URI), err)
	}
	defer client.Disconnect(context.Background())
	var hello bson.M
	if err := client.Database("admin").RunCommand(ctx, bson.D{{Key: "hello", Value: 1}}).Decode(&hello); err != nil {
		return "", classifyErr(cfg.URI, fmt.Errorf("hello: %w", err))
	}
	kind := ""
	switch {
	case hello["msg"] == "isdbgrid":
		kind = "sharded cluster (mongos)"
	case hello["setName"] != nil:
		kind = fmt.Sprintf("replica set %v", hello["setName"])
	default:
		return "", fmt.Errorf("source mongo %s is a standalone server: change streams need a replica set (a one-member replica set will do: start mongod with --replSet and run rs.initiate())", redact(cfg.URI))
	}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	opts := options.ChangeStream().SetFullDocument(options.UpdateLookup)
	if cfg.PreImages {
		opts.SetFullDocumentBeforeChange(options.WhenAvailable)
	}
	var cs *mongo.ChangeStream
	switch {
	case cfg.Collection != "":
		cs, err = client.Database(cfg.Database).Collection(cfg.Collection).Watch(cctx, mongo.Pipeline{}, opts)
	case cfg.Database != "":
		cs, err = client.Database(cfg.Database).Watch(cctx, mongo.Pipeline{}, opts)
	default:
		cs, err = client.Watch(cctx, mongo.Pipeline{}, opts)
	}
	if err != nil {
		return "", classifyErr(cfg.URI, fmt.Errorf("open a change stream: %w", err))
	}
	_ = cs.Close(context.Background())
	return kind, nil
}
