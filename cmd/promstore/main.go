// Command promstore reads, dumps, migrates, cleans up and serves Python
// Prometheus multiprocess metric stores.
package main

import (
	"os"

	"github.com/promstore/promstore/internal/commands"
)

func main() { os.Exit(commands.Main()) }
