package listen

import (
	"reflect"
	"strings"
	"testing"

	"github.com/socks-dev/socks/commands/cmdutil"
	"github.com/socks-dev/socks/iostreams"
)

// TestTheHelpNamesEveryFieldOfAJSONLine: docs/json.md sends a reader of
// `listen --json` to `socks listen --help` for its shapes, and the help
// named the fields of a message line only: a state line's "state",
// "code", "retryInMs", ... were in no document.
func TestTheHelpNamesEveryFieldOfAJSONLine(t *testing.T) {
	ios, _, _, _ := iostreams.Test()
	long := NewCmdListen(&cmdutil.Factory{IOStreams: ios}, nil).Long
	typ := reflect.TypeFor[Line]()
	for i := range typ.NumField() {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		if !strings.Contains(long, `"`+name+`"`) {
			t.Errorf("socks listen --help does not name the field %q of its --json lines", name)
		}
	}
	for _, state := range []string{StateConnected, StateDisconnected, StateReconnecting, StateRenewing, StateClosed} {
		if !strings.Contains(long, `"`+state+`"`) {
			t.Errorf("socks listen --help does not name the state %q of its --json state lines", state)
		}
	}
}
