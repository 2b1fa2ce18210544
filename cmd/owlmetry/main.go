// Command owlmetry is the Owlmetry background-jobs command line, API server and local
// development stack.
package main

import (
	"os"

	"github.com/owlmetry/owlmetry/internal/commands"
)

func main() {
	os.Exit(int(commands.Main()))
}
