package database

import (
	"context"
	"database/sql"
	"strconv"
	"strings"

	"gorm.io/gorm"
)

// Statement is a fixed SQL text that runs straight on a gorm DB's
// connection pool, without gorm's statement builder, callbacks and
// reflective scan: for the few queries on the hot read path, where those
// cost more than the database's own work. The caller scans the result
// into its own variables.
//
// It runs where gorm would run it: on SQLite as a prepared statement
// (stmtCache), on PostgreSQL through gorm's prepared-statement cache, and
// on a transaction's connection when db is a transaction. gorm's logger
// is off (Open), so nothing is lost by going around it.
type Statement struct {
	sqlite, postgres string
}

// NewStatement returns the statement of query, written with ? for each
// argument (no ? may appear in a literal or identifier); on PostgreSQL
// they are numbered $1, $2, … as gorm would write them.
func NewStatement(query string) Statement {
	var b strings.Builder
	n := 0
	for part := range strings.SplitSeq(query, "?") {
		if n > 0 {
			b.WriteString("$" + strconv.Itoa(n))
		}
		b.WriteString(part)
		n++
	}
	return Statement{sqlite: query, postgres: b.String()}
}

// prepare returns the statement's SQL for db's dialect and the context
// to run it under. On SQLite that is ctx without its cancellation, unless
// ctx has ended already (database/sql then refuses to run the query, with
// ctx's error): the statements are indexed lookups that take microseconds
// in process, and a cancellable context costs more than that, two
// goroutines per query (database/sql's and the driver's watchers of ctx)
// and the driver's progress handler. A query that has started then runs
// to its end (as any statement that does not reach the driver's progress
// check does), and the caller's next step sees the cancellation. On
// PostgreSQL, a network round trip, ctx is passed on.
func (s Statement) prepare(ctx context.Context, db *gorm.DB) (context.Context, string) {
	if DialectFor(db) == Postgres {
		return ctx, s.postgres
	}
	if ctx.Err() != nil {
		return ctx, s.sqlite
	}
	return context.WithoutCancel(ctx), s.sqlite
}

// Query runs the statement on db's connection pool with args, under ctx
// (see prepare). db is used for its pool only: there is no need for a
// db.WithContext session (which clones gorm's statement state on every
// call).
func (s Statement) Query(ctx context.Context, db *gorm.DB, args ...any) (*sql.Rows, error) {
	ctx, text := s.prepare(ctx, db)
	return db.Statement.ConnPool.QueryContext(ctx, text, args...)
}

// QueryRow is Query for at most one row.
func (s Statement) QueryRow(ctx context.Context, db *gorm.DB, args ...any) *sql.Row {
	ctx, text := s.prepare(ctx, db)
	return db.Statement.ConnPool.QueryRowContext(ctx, text, args...)
}
