package e2e

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/socks-dev/socks/local"
	"github.com/socks-dev/socks/store"
)

// TestEventBridgeEntityFlow is the flow of the "Intro to AWS WebSockets"
// design on the local stack: two clients on the lobby, one subscribes to
// an entity with {"action":"subscribe","entityId":...}, the other to
// another entity; an EventBridge event naming the first entity, put on the
// queue as an EventBridge rule would, reaches the first client as the
// configured mapping says, and not the second.
func TestEventBridgeEntityFlow(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	cfg := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(cfg, []byte("[profiles.site.mapping]\ntopics = [\"/detail/entityId\"]\nbody = \"/detail\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := s.serve("--config", cfg, "--config-profile", "site")
	helton := mustDial(t, srv.connectURL("Helton", s.issue("Helton"), "lobby"))
	other := mustDial(t, srv.connectURL("Other", s.issue("Other"), "lobby"))

	subscribe := func(conn *websocket.Conn, frame string) {
		t.Helper()
		if err := conn.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
			t.Fatal(err)
		}
	}
	subscribe(helton, `{"action":"subscribe","entityId":"myTestEntityId"}`)
	if got := readText(t, helton); got != `{"type":"subscribed","topics":["lobby","myTestEntityId"]}` {
		t.Fatalf("Helton's subscribe got %s", got)
	}
	subscribe(other, `{"action":"subscribe","entityId":"otherEntity"}`)
	if got := readText(t, other); got != `{"type":"subscribed","topics":["lobby","otherEntity"]}` {
		t.Fatalf("Other's subscribe got %s", got)
	}

	event, err := os.ReadFile(filepath.Join("..", "testdata", "events", "eventbridge-entity.json"))
	if err != nil {
		t.Fatal(err)
	}
	var id struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(event, &id); err != nil {
		t.Fatal(err)
	}
	db, err := local.Open(testContext(t, commandTimeout), filepath.Join(s.dir, "socks.db"), local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Queue().Send(testContext(t, commandTimeout), event); err != nil {
		t.Fatal(err)
	}

	t.Run("the first client receives the mapped body", func(t *testing.T) {
		if got := readText(t, helton); got != `{"entityId":"myTestEntityId","message":"hello from EventBridge"}` {
			t.Errorf("Helton got %s", got)
		}
	})
	t.Run("the second client receives nothing", func(t *testing.T) {
		// The broker records its report once the fan-out is over; a
		// message published after that is the next thing Other gets.
		ctx := testContext(t, commandTimeout)
		for {
			rep, err := db.Store().GetReport(ctx, id.ID)
			if err == nil {
				if rep.Targets != 1 || rep.Delivered != 1 {
					t.Errorf("report %+v; want one target, delivered", rep)
				}
				break
			}
			if !errors.Is(err, store.ErrNotFound) || ctx.Err() != nil {
				t.Fatalf("waiting for the report of %s: %v", id.ID, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		s.publishWait("--topic", "lobby", "--message", "after the event")
		if got := readText(t, other); got != `"after the event"` {
			t.Errorf("Other got %s first; want only the later lobby message", got)
		}
	})
}

// TestABadMappingIsOneLineFromConfigAndDoctor: a mapping with a path that
// is not a JSON pointer is refused before anything runs, saying what to fix.
func TestABadMappingIsOneLineFromConfigAndDoctor(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	cfg := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(cfg, []byte("[profiles.site.mapping]\ntopics = [\"/detail/entityId\"]\nusers = \"detail.userId\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range [][]string{{"config"}, {"doctor"}, {"serve", "--addr", "127.0.0.1:0"}} {
		t.Run(cmd[0], func(t *testing.T) {
			r := s.run(append(cmd, "--config", cfg, "--config-profile", "site")...)
			checkFailure(t, r, 2, `event mapping from profile site: mapping users "detail.userId" is not a JSON pointer: start it with "/", as in "/detail/userId"`)
		})
	}
	t.Run("a good mapping is shown by config and doctor", func(t *testing.T) {
		if err := os.WriteFile(cfg, []byte("[profiles.site.mapping]\ntopics = [\"/detail/entityId\"]\nusers = \"/detail/userId\"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		out := s.must("config", "--config", cfg, "--config-profile", "site")
		if !strings.Contains(out, "event mapping\ttopics=/detail/entityId users=/detail/userId body=/detail\tprofile site") {
			t.Errorf("config shows:\n%s", out)
		}
		r := s.run("doctor", "--config", cfg, "--config-profile", "site")
		if !strings.Contains(r.stdout, "; event mapping topics=/detail/entityId users=/detail/userId body=/detail\n") {
			t.Errorf("doctor shows:\n%s", r)
		}
	})
}
