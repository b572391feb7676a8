package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/skyline-go/skyline"
	"github.com/skyline-go/skyline/kvs"
	"github.com/skyline-go/skyline/kvs/kvslocal"
)

// newKVSOut builds a kvs://REGION/STREAM destination: the native PutMedia
// client by default, credentials from the standard AWS chain, the endpoint
// from AWS_ENDPOINT_URL_KINESIS_VIDEO when set. shown is spec without its
// secrets, for errors.
func newKVSOut(spec, shown string, log *slog.Logger) (skyline.Destination, error) {
	cfg, err := kvs.ParseURL(spec)
	if err != nil {
		return nil, fmt.Errorf("--out %s: %w", shown, err)
	}
	cfg.Logger = log
	cfg.OnEvent = func(e kvs.Event) {
		if e.Type == kvs.EventError {
			log.Warn("kvs", "stream", e.Stream, "error", e.Err, "retry_in", e.Backoff)
		}
	}
	return kvs.New(cfg)
}

// kvsLocal runs the local KVS-compatible endpoint until Ctrl-C.
func kvsLocal(args []string) int {
	fs := flag.NewFlagSet("kvs-local", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:4566", "HTTP listen address")
	data := fs.String("data", "kvs-data", "folder for the received media (one folder per stream)")
	ak := fs.String("access-key", "", "access key id it accepts (default $AWS_ACCESS_KEY_ID)")
	sk := fs.String("secret-key", "", "secret key it accepts (default $AWS_SECRET_ACCESS_KEY; '${NAME}' and '${file:PATH}' are expanded)")
	strict := fs.Bool("strict", false, "answer ResourceNotFound for unknown streams instead of creating them")
	lenient := fs.Bool("lenient", false, "debugging only: no PutMedia rate limit, minimum fragment duration or idle close; PERSISTED for every stream; "+
		"fragments ordered across requests and re-sends stored once (AWS does none of that)")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "skyline kvs-local: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	log, err := newLogger(*level)
	if err == nil {
		*sk, _, err = expandSecrets("--secret-key", *sk)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "skyline kvs-local:", err)
		return 2
	}
	if err := os.MkdirAll(*data, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "skyline kvs-local:", err)
		return 1
	}
	srv, err := kvslocal.New(kvslocal.Config{Listen: *listen, DataDir: *data, AccessKey: *ak, SecretKey: *sk,
		Strict: *strict, Lenient: *lenient, Logger: log})
	if err == nil {
		err = srv.Start()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "skyline kvs-local:", err)
		return 1
	}
	fmt.Printf("kvs-local: Kinesis Video Streams endpoint at %s, media under %s\n", srv.URL(), *data)
	fmt.Printf("use:       AWS_ENDPOINT_URL_KINESIS_VIDEO=%s skyline serve --out kvs://us-east-1/demo\n", srv.URL())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	if err := srv.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "skyline kvs-local:", err)
		return 1
	}
	return 0
}
