// Command postern is the Postern secure e-mail gateway appliance.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"postern/appliance"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := appliance.Main(ctx, os.Args, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
