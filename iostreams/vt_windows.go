//go:build windows

package iostreams

import (
	"os"

	"github.com/muesli/termenv"
)

// enableEscapes turns on virtual-terminal processing for the console f,
// so that it acts on escape sequences (colour, clearing a line) instead of
// showing them; it fails where the console cannot (before Windows 10
// 1511, some embedded consoles). The mode is left on at exit, as other
// command-line tools leave it.
func enableEscapes(f *os.File) error {
	_, err := termenv.EnableVirtualTerminalProcessing(termenv.NewOutput(f))
	return err
}
