package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"
	"gorm.io/gorm"

	"github.com/healthgw/healthgw/database"
)

// accessRow is the peer's audit row: one per read, inserted durably
// before the answer.
type accessRow struct {
	ID        uint `gorm:"primaryKey"`
	Requester string
	RecordID  string
	Purpose   string
	RequestID string
	At        time.Time
}

// peerServer is the bare gin + jwx server of the read pair: it checks a
// bearer JWT (signature, issuer, audience, expiry, a scope claim) on every
// request and answers the record; in mode "audited" it first inserts one
// row into SQLite (opened by healthgw's database package: WAL,
// synchronous=FULL, so each insert is durable) in its own transaction.
func peerServer(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("peer-server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	mode := fs.String("mode", "bare", "bare or audited")
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	keyPath := fs.String("key", "", "the token verification key (a public JWK)")
	dbPath := fs.String("db", "", "SQLite file of the audited mode")
	issuer := fs.String("issuer", "", "token issuer")
	audience := fs.String("audience", "", "token audience")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *mode != "bare" && *mode != "audited" {
		return fmt.Errorf("peer-server: -mode %q: want bare or audited", *mode)
	}
	kb, err := os.ReadFile(*keyPath)
	if err != nil {
		return err
	}
	key, err := jwk.ParseKey(kb)
	if err != nil {
		return fmt.Errorf("peer-server: key: %w", err)
	}
	alg := jwa.ES256()
	if key.KeyType() == jwa.OKP() {
		alg = jwa.EdDSA()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var db *gorm.DB
	if *mode == "audited" {
		if db, err = database.Open(ctx, *dbPath); err != nil {
			return err
		}
		defer database.Close(db)
		if err := db.WithContext(ctx).AutoMigrate(&accessRow{}); err != nil {
			return err
		}
	}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(gin.Recovery())
	r.GET("/", func(c *gin.Context) { c.Status(http.StatusNoContent) })
	body := []byte(`{"id":"rec-1","patient":"bench-patient-1","category":"labs","content_type":"application/fhir+json","content":` + labFHIR + `}`)
	r.GET("/v1/records/:id", func(c *gin.Context) {
		h := c.GetHeader("Authorization")
		raw, ok := strings.CutPrefix(h, "Bearer ")
		if !ok {
			c.AbortWithStatusJSON(http.StatusUnauthorized, gin.H{"error": "unauthorized"})
			return
		}
		tok, err := jwt.Parse([]byte(raw), jwt.WithKey(alg, key), jwt.WithValidate(true),
			jwt.WithIssuer(*issuer), jwt.WithAudience(*audience), jwt.WithAcceptableSkew(30*time.Second))
		if err != nil {
			c.AbortWithStatusJSON(http.StatusUnauthorized, gin.H{"error": "unauthorized"})
			return
		}
		var scope string
		if err := tok.Get("scope", &scope); err != nil || scope != "records:read" {
			c.AbortWithStatusJSON(http.StatusForbidden, gin.H{"error": "forbidden"})
			return
		}
		sub, _ := tok.Subject()
		if db != nil {
			row := accessRow{Requester: sub, RecordID: c.Param("id"), Purpose: c.Query("purpose"), RequestID: rand.Text(), At: time.Now()}
			if err := db.WithContext(c.Request.Context()).Create(&row).Error; err != nil {
				c.AbortWithStatusJSON(http.StatusInternalServerError, gin.H{"error": "Internal error."})
				return
			}
		}
		c.Data(http.StatusOK, "application/json", body)
	})
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: r, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: time.Minute}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
