// Command ferretdb-launcher runs an embedded FerretDB v1 (MongoDB wire protocol)
// on top of PostgreSQL for local development and tests.
//
// It exists because the upstream cmd/ferretdb binary, when built with
// `go install`, panics at start-up looking for a version file that is not in
// the module; the embeddable package does not need it.
//
// Configuration comes from flags, each of which falls back to an environment
// variable:
//
//	-listen        FERRETDB_LISTEN_ADDR     (default 127.0.0.1:17017)
//	-handler       FERRETDB_HANDLER         (default postgresql)
//	-postgresql-url FERRETDB_POSTGRESQL_URL (default postgres://chat:chat@127.0.0.1:15432/ferretdb)
//	-sqlite-url    FERRETDB_SQLITE_URL      (only for -handler=sqlite)
//	-log-level     FERRETDB_LOG_LEVEL       (debug, info, warn, error; default info)
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// envOr returns the value of the environment variable key, or def when unset/empty.
func envOr(key, def string) string {
	if v, ok := os.LookupEnv(key); ok && v != "" {
		return v
	}
	return def
}

func parseLevel(s string) (slog.Level, error) {
	var lvl slog.Level
	err := lvl.UnmarshalText([]byte(strings.ToUpper(s)))
	return lvl, err
}

func main() {
	listen := flag.String("listen", envOr("FERRETDB_LISTEN_ADDR", "127.0.0.1:17017"), "TCP listen address")
	handler := flag.String("handler", envOr("FERRETDB_HANDLER", "postgresql"), "backend handler: postgresql or sqlite")
	pgURL := flag.String("postgresql-url", envOr("FERRETDB_POSTGRESQL_URL", "postgres://chat:chat@127.0.0.1:15432/ferretdb"), "PostgreSQL URL for the postgresql handler")
	sqliteURL := flag.String("sqlite-url", envOr("FERRETDB_SQLITE_URL", ""), "SQLite directory URL for the sqlite handler (e.g. file:data/)")
	logLevel := flag.String("log-level", envOr("FERRETDB_LOG_LEVEL", "info"), "log level: debug, info, warn, error")
	flag.Parse()

	lvl, err := parseLevel(*logLevel)
	if err != nil {
		fmt.Fprintf(os.Stderr, "ferretdb-launcher: bad log level %q: %v\n", *logLevel, err)
		os.Exit(2)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
	slog.SetDefault(logger)

	cfg := &ferretdb.Config{
		Listener: ferretdb.ListenerConfig{TCP: *listen},
		Logger:   logger,
		Handler:  *handler,
	}
	switch *handler {
	case "postgresql":
		cfg.PostgreSQLURL = *pgURL
	case "sqlite":
		if *sqliteURL == "" {
			fmt.Fprintln(os.Stderr, "ferretdb-launcher: -sqlite-url is required for the sqlite handler")
			os.Exit(2)
		}
		cfg.SQLiteURL = *sqliteURL
	default:
		fmt.Fprintf(os.Stderr, "ferretdb-launcher: unknown handler %q (want postgresql or sqlite)\n", *handler)
		os.Exit(2)
	}

	// Cancel the context on SIGINT/SIGTERM so FerretDB closes its listener,
	// client connections and backend pool before we exit.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	f, err := ferretdb.New(cfg)
	if err != nil {
		logger.Error("ferretdb-launcher: start failed", "error", err)
		os.Exit(1)
	}

	logger.Info("ferretdb-launcher: listening", "addr", *listen, "handler", *handler, "uri", f.MongoDBURI())

	if err := f.Run(ctx); err != nil {
		logger.Error("ferretdb-launcher: run failed", "error", err)
		os.Exit(1)
	}
	logger.Info("ferretdb-launcher: stopped")
}
