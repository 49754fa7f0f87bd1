package cmdutil

import (
	"bufio"
	"fmt"
	"strings"

	"github.com/socks-dev/socks/iostreams"
)

// Ask writes prompt on stderr and returns the line typed on stdin, trimmed;
// "" (after ending the prompt's line) when stdin ends first.
func Ask(ios *iostreams.IOStreams, prompt string) string {
	fmt.Fprint(ios.ErrOut, prompt)
	line, err := bufio.NewReader(ios.In).ReadString('\n')
	if err != nil && line == "" {
		fmt.Fprintln(ios.ErrOut)
	}
	return strings.TrimSpace(line)
}
