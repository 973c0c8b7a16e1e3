package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"gorm.io/gorm"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/database"
)

// statementCounter counts the SQL statements run for one request: those
// whose context carries the request's mark (the request's own queries,
// whether built by gorm or run as a fixed database.Statement straight on
// the connection pool) and those run inside a transaction (the ledger
// writer commits appends in a transaction on its own goroutine and
// context). The ledger's periodic checkpoint publisher runs neither marked
// nor in a transaction, so it is not counted.
//
// Statements outside a transaction are counted where they reach the
// connection pool (countingPool), which every one of them passes; those in
// a transaction run on the transaction's own connection, and are counted
// by gorm callbacks (which see only gorm's statements: every transaction
// on the read path is gorm's).
type statementCounter struct {
	mu   sync.Mutex
	on   bool
	sqls []string
}

type markKey struct{}

func (c *statementCounter) add(sql string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.on {
		c.sqls = append(c.sqls, sql)
	}
}

func (c *statementCounter) install(t *testing.T, db *gorm.DB) {
	t.Helper()
	pool := db.ConnPool
	counting := &countingPool{ConnPool: pool, c: c}
	db.ConnPool, db.Statement.ConnPool = counting, counting
	// database.Close closes the statements of the pool it opened.
	t.Cleanup(func() { db.ConnPool, db.Statement.ConnPool = pool, pool })
	cb := db.Callback()
	count := func(tx *gorm.DB) {
		if _, inTx := tx.Statement.ConnPool.(gorm.TxCommitter); inTx {
			c.add(tx.Statement.SQL.String())
		}
	}
	for name, err := range map[string]error{
		"create": cb.Create().After("gorm:create").Register("test:count", count),
		"query":  cb.Query().After("gorm:query").Register("test:count", count),
		"update": cb.Update().After("gorm:update").Register("test:count", count),
		"delete": cb.Delete().After("gorm:delete").Register("test:count", count),
		"row":    cb.Row().After("gorm:row").Register("test:count", count),
		"raw":    cb.Raw().After("gorm:raw").Register("test:count", count),
	} {
		if err != nil {
			t.Fatalf("register %s callback: %v", name, err)
		}
	}
}

// countingPool is a gorm connection pool that counts the marked
// statements run on it (outside transactions).
type countingPool struct {
	gorm.ConnPool
	c *statementCounter
}

var (
	_ gorm.TxBeginner     = (*countingPool)(nil)
	_ gorm.GetDBConnector = (*countingPool)(nil)
)

func (p *countingPool) count(ctx context.Context, query string) {
	if _, marked := ctx.Value(markKey{}).(bool); marked {
		p.c.add(query)
	}
}

func (p *countingPool) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	p.count(ctx, query)
	return p.ConnPool.ExecContext(ctx, query, args...)
}

func (p *countingPool) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	p.count(ctx, query)
	return p.ConnPool.QueryContext(ctx, query, args...)
}

func (p *countingPool) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	p.count(ctx, query)
	return p.ConnPool.QueryRowContext(ctx, query, args...)
}

func (p *countingPool) BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error) {
	return p.ConnPool.(gorm.TxBeginner).BeginTx(ctx, opts)
}

func (p *countingPool) GetDBConn() (*sql.DB, error) {
	return p.ConnPool.(gorm.GetDBConnector).GetDBConn()
}

// during counts the statements of fn.
func (c *statementCounter) during(fn func()) []string {
	c.mu.Lock()
	c.on, c.sqls = true, nil
	c.mu.Unlock()
	fn()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.on = false
	return c.sqls
}

// TestGatedReadStatements counts the SQL statements of one consent-gated
// read on the real SQLite path: the record's metadata (never its
// content), the grants that can decide (one indexed query:
// consentstore.GrantsMatching), the access.decided append (lock the head,
// insert, update the head) and, once permitted, the sealed content by
// primary key (no other column). At most six, two of them on the records
// table.
func TestGatedReadStatements(t *testing.T) {
	const maxStatements = 6
	dir := t.TempDir()
	db, err := database.Open(t.Context(), filepath.Join(dir, "healthgw.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { database.Close(db) })
	var counter statementCounter
	counter.install(t, db)
	g := newTestGatewayOn(t, db, func(c *serveConfig) { c.DataDir = filepath.Join(dir, "data") })
	w := &world{testGateway: g}
	w.atok = g.token(g.register("hosp-a", auth.KindHospital), "")
	w.btok = g.token(g.register("hosp-b", auth.KindHospital), "")
	w.ptok = g.patientToken("pat-1")
	w.rec = g.putRecord(w.atok, "pat-1", "labs", "application/fhir+json", json.RawMessage(labFHIR))
	w.grant(w.ptok, map[string]any{"grantee": map[string]string{"org": "hosp-b"}, "purposes": []string{"TREAT"}})
	// A token's first use checks the revocation list once (then cached):
	// not part of the read.
	for _, tok := range []string{w.atok, w.btok} {
		if status, body := w.do("GET", "/v1/whoami", tok, nil); status != http.StatusOK {
			t.Fatalf("whoami: %d %s", status, body)
		}
	}

	// Authentication is counted apart: a token's first use checks the
	// revocation list once, then the verified-token cache answers. Warm
	// the tokens so that the count is the read's own.
	for _, tok := range []string{w.atok, w.btok, w.ptok} {
		if status, _ := g.do("GET", "/v1/whoami", tok, nil); status != http.StatusOK {
			t.Fatalf("whoami: status %d", status)
		}
	}
	read := func(token string) (int, []string) {
		var status int
		sqls := counter.during(func() {
			req := httptest.NewRequestWithContext(context.WithValue(t.Context(), markKey{}, true), "GET", "/v1/records/"+w.rec.ID+"?purpose=TREAT", nil)
			req.Header.Set("Authorization", "Bearer "+token)
			rec := httptest.NewRecorder()
			g.api.Handler().ServeHTTP(rec, req)
			status = rec.Code
		})
		return status, sqls
	}
	for _, tt := range []struct {
		name, token string
		status      int
	}{
		{"first read under a grant", w.btok, http.StatusOK},
		{"second read under a grant", w.btok, http.StatusOK},
		{"holder's read", w.atok, http.StatusOK},
		{"patient token, refused before any read", w.ptok, http.StatusForbidden},
	} {
		status, sqls := read(tt.token)
		if status != tt.status {
			t.Fatalf("%s: status %d, want %d", tt.name, status, tt.status)
		}
		t.Logf("%s: %d statements:\n  %s", tt.name, len(sqls), strings.Join(sqls, "\n  "))
		if len(sqls) > maxStatements {
			t.Errorf("%s: %d SQL statements, want at most %d", tt.name, len(sqls), maxStatements)
		}
		if tt.status == http.StatusOK && len(sqls) < 4 {
			t.Errorf("%s: only %d statements counted: the counter misses the record load, grants or append", tt.name, len(sqls))
		}
		var records []string
		for _, q := range sqls {
			if strings.Contains(q, "`records`") || strings.Contains(q, `"records"`) {
				records = append(records, q)
			}
		}
		if tt.status != http.StatusOK {
			continue
		}
		if len(records) != 2 {
			t.Errorf("%s: %d statements on the records table, want 2 (metadata, then content)", tt.name, len(records))
			continue
		}
		if meta := records[0]; strings.Contains(meta, "ciphertext") || strings.Contains(meta, "wrapped_key") {
			t.Errorf("%s: the record is decided on a statement that reads its content: %s", tt.name, meta)
		}
		if content := records[1]; content != sqls[len(sqls)-1] || !isContentLoad(content) {
			t.Errorf("%s: the last statement is not the content load by primary key: %s", tt.name, content)
		}
	}
}

// isContentLoad reports whether q is the statement of
// recordstore.Store.Content: the sealed content of one record by its ID
// (with the piece count of a streamed one), and no other column.
func isContentLoad(q string) bool {
	cols, rest, ok := strings.Cut(strings.TrimPrefix(q, "SELECT "), " FROM ")
	if !ok || !strings.HasPrefix(q, "SELECT ") {
		return false
	}
	var got []string
	for c := range strings.SplitSeq(cols, ",") {
		got = append(got, strings.Trim(c, "`\" "))
	}
	return strings.Join(got, ",") == "format,key_version,pieces,wrapped_key,ciphertext" &&
		strings.Contains(rest, "WHERE id = ")
}
