// Package subs implements `socks subs list|stats`: who is connected to what.
package subs

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/socks-dev/socks/backend"
	"github.com/socks-dev/socks/commands/cmdutil"
	"github.com/socks-dev/socks/internal/text"
	"github.com/socks-dev/socks/iostreams"
	"github.com/socks-dev/socks/ops"
	"github.com/socks-dev/socks/pubsub"
	"github.com/socks-dev/socks/store"
	"github.com/socks-dev/socks/ui"
)

// NewCmdSubs returns the `subs` noun with its verbs.
func NewCmdSubs(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "subs <command>",
		Short: "Show who is connected and to which topics",
		Long: `List the open connections with their geek and topics, or count them by
topic. The records are what $connect wrote; a record of a connection that
died without a $disconnect stays until it expires or 'socks prune-stale'
deletes it (--live asks the gateway which are really open).`,
		Example: `  socks subs list
  socks subs list --geek Friendless --live
  socks subs stats --json`,
	}
	cmd.AddCommand(NewCmdList(f, nil), NewCmdStats(f, nil))
	return cmd
}

// ListOptions are the inputs of `subs list`.
type ListOptions struct {
	IO    *iostreams.IOStreams
	Store func(context.Context) (store.Store, error)
	// Pusher returns the Management API client (for --live), or an error
	// wrapping backend.ErrNoGateway when no gateway runs.
	Pusher func(ctx context.Context, concurrency int) (store.Pusher, error)
	Now    func() time.Time

	Geek  string
	Topic string
	Live  bool
	JSON  bool
}

// NewCmdList returns `subs list`.
func NewCmdList(f *cmdutil.Factory, runF func(context.Context, *ListOptions) error) *cobra.Command {
	opts := &ListOptions{
		IO: f.IOStreams, Store: f.ListStore, Now: f.Now,
		Pusher: f.Pusher,
	}
	cmd := &cobra.Command{
		Use:   "list [--geek NAME] [--topic T] [--live]",
		Short: "List open connections",
		Long: `List the open connections: connection ID, geek, topics, when it connected
and when it was last active. Sorted by geek, then connection time.

--topic lists the connections subscribed to exactly that topic (a wildcard
subscriber is listed under '.'). --live asks the gateway's Management API
about each connection for its last activity ("gone" when the connection no
longer exists); without it, last activity shows "-".

On a terminal: a table with relative times. Otherwise: tab-separated lines
with RFC 3339 times. When nothing matched it says so on stderr and exits 0
(--json prints []).`,
		Example: `  socks subs list
  socks subs list --geek Friendless --live
  socks subs list --topic updates --json | jq -r '.[].connectionId'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := cmdutil.NotEmpty(cmd, "geek", "topic"); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return listRun(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&opts.Geek, "geek", "g", "", "only this geek's connections")
	fl.StringVarP(&opts.Topic, "topic", "t", "", "only connections subscribed to this topic (one; not a list)")
	fl.BoolVar(&opts.Live, "live", false, "ask the gateway for each connection's last activity")
	fl.BoolVar(&opts.JSON, "json", false, "print as JSON")
	return cmd
}

// listed is one connection as `subs list --json` prints it.
type listed struct {
	pubsub.Connection
	AgeSeconds   int64     `json:"ageSeconds"`
	LastActiveAt time.Time `json:"lastActiveAt,omitzero"`
	State        string    `json:"state,omitempty"`
}

func listRun(ctx context.Context, opts *ListOptions) error {
	if opts.Geek != "" {
		if err := pubsub.ValidateGeek(opts.Geek); err != nil {
			return &cmdutil.FlagError{Err: err}
		}
	}
	if opts.Topic != "" {
		if strings.Contains(opts.Topic, ",") {
			// publish and listen take a comma list; the lookup here is
			// by one topic.
			return cmdutil.FlagErrorf("--topic %q: subs list takes one topic, not a list: run it once per topic", opts.Topic)
		}
		if err := pubsub.ValidateTopic(opts.Topic); err != nil {
			return &cmdutil.FlagError{Err: err}
		}
	}
	// Records are judged and shown by the clock that wrote them: the
	// store's (on AWS, AWS's), which this machine's may be set off from.
	clock := &store.FollowedClock{Local: opts.Now}
	now := clock.Now()
	var conns []pubsub.Connection
	found, err := cmdutil.ReadWith(ctx, opts.Store, opts.IO.ErrOut, func(s store.Store) (err error) {
		now = clock.Follow(ctx, s)
		conns, err = ops.ListConnections(ctx, s, store.ConnectionFilter{Geek: opts.Geek, Topic: opts.Topic}, now)
		return err
	})
	if err != nil {
		return err
	}
	var live map[string]ops.Liveness
	if opts.Live && len(conns) > 0 {
		live, err = describe(ctx, opts, conns)
		if err != nil {
			return err
		}
	}
	items := make([]listed, len(conns))
	for i, c := range conns {
		items[i] = listed{Connection: c, AgeSeconds: int64(now.Sub(c.ConnectedAt) / time.Second)}
		if l, ok := live[c.ID]; ok {
			items[i].LastActiveAt, items[i].State = l.LastActiveAt, string(l.State)
		}
	}
	if opts.JSON {
		if err := cmdutil.PrintJSON(opts.IO.Out, items); err != nil {
			return err
		}
	} else if len(items) > 0 {
		if err := printList(opts, items, clock.Now); err != nil {
			return err
		}
	}
	if len(items) == 0 && !opts.JSON && found {
		// An empty list is an answer, not an error: stdout stays empty
		// for scripts and a person reads why on stderr.
		fmt.Fprintln(opts.IO.ErrOut, nothingMatched(opts))
	}
	return nil
}

// describe asks the Management API about conns; with no gateway it says
// so on stderr and returns nothing.
func describe(ctx context.Context, opts *ListOptions, conns []pubsub.Connection) (map[string]ops.Liveness, error) {
	p, err := opts.Pusher(ctx, ops.DefaultConcurrency)
	if errors.Is(err, backend.ErrNoGateway) {
		fmt.Fprintln(opts.IO.ErrOut, "note: no local gateway is running, so --live cannot ask about the connections: start `socks serve`")
		return nil, nil
	}
	if errors.Is(err, backend.ErrNoEndpoint) {
		return nil, fmt.Errorf("--live needs the Management API: %w", err)
	}
	if err != nil {
		return nil, fmt.Errorf("--live: cannot reach the Management API: %w", err)
	}
	live, err := ops.Describe(ctx, p, conns, ops.DefaultConcurrency)
	if err != nil {
		return nil, err
	}
	failed := 0
	var first error
	for _, l := range live {
		if l.Err != nil {
			failed++
			if first == nil {
				first = l.Err
			}
		}
	}
	if failed > 0 {
		fmt.Fprintf(opts.IO.ErrOut, "warning: the Management API did not describe %s (first: %v); run `socks doctor`\n", text.Pluralize(failed, "connection"), text.Sanitize(first.Error(), false))
	}
	return live, nil
}

func nothingMatched(opts *ListOptions) string {
	var what []string
	if opts.Geek != "" {
		what = append(what, "of "+opts.Geek)
	}
	if opts.Topic != "" {
		what = append(what, "on topic "+opts.Topic)
	}
	if len(what) == 0 {
		return "no open connections"
	}
	return "no open connections " + strings.Join(what, " ")
}

func printList(opts *ListOptions, items []listed, now func() time.Time) error {
	u := ui.New(opts.IO)
	u.SetNow(now)
	rows := make([][]string, len(items))
	for i, it := range items {
		last := u.Time(it.LastActiveAt)
		switch ops.LiveState(it.State) {
		case ops.StateGone:
			last = "gone"
			if u.Styled() {
				last = u.Bad.Render(last)
			}
		case ops.StateUnknown:
			last = "-"
		}
		// A record's ID, geek and topics are whoever wrote it's (a
		// backend in another language, on AWS): u.Name shows them.
		id := u.Name(it.ID)
		if u.Styled() {
			id = u.Accent.Render(id)
		}
		rows[i] = []string{id, u.Name(it.Geek), names(u, it.Topics), u.Time(it.ConnectedAt), last}
	}
	return u.Table([]string{"CONNECTION", "GEEK", "TOPICS", "CONNECTED", "LAST ACTIVE"}, rows)
}

// names joins names with commas, each as u.Name shows it.
func names(u *ui.UI, list []string) string {
	shown := make([]string, len(list))
	for i, n := range list {
		shown[i] = u.Name(n)
	}
	return strings.Join(shown, ",")
}

// StatsOptions are the inputs of `subs stats`.
type StatsOptions struct {
	IO    *iostreams.IOStreams
	Store func(context.Context) (store.Store, error)
	Now   func() time.Time
	JSON  bool
}

// NewCmdStats returns `subs stats`.
func NewCmdStats(f *cmdutil.Factory, runF func(context.Context, *StatsOptions) error) *cobra.Command {
	opts := &StatsOptions{IO: f.IOStreams, Store: f.ListStore, Now: f.Now}
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Count open connections by topic",
		Long: `Count the open connections: in total, how many geeks they belong to, the
oldest one, and how many follow each topic (a wildcard subscriber counts
under '.'), most followed first.

Not on a terminal it prints tab-separated lines:
  connections N / geeks N / oldest ID TIME / topic NAME N`,
		Example: `  socks subs stats
  socks subs stats --json | jq '.topics[0]'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return statsRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print as JSON")
	return cmd
}

func statsRun(ctx context.Context, opts *StatsOptions) error {
	st := ops.SubscriptionStats{Topics: []ops.TopicCount{}}
	// Records are judged and shown by the clock that wrote them: the
	// store's (on AWS, AWS's), which this machine's may be set off from.
	clock := &store.FollowedClock{Local: opts.Now}
	_, err := cmdutil.ReadWith(ctx, opts.Store, opts.IO.ErrOut, func(s store.Store) (err error) {
		st, err = ops.CountSubscriptions(ctx, s, clock.Follow(ctx, s))
		return err
	})
	if err != nil {
		return err
	}
	out := opts.IO.Out
	if opts.JSON {
		return cmdutil.PrintJSON(out, st)
	}
	u := ui.New(opts.IO)
	u.SetNow(clock.Now)
	if !u.Styled() {
		var b strings.Builder
		fmt.Fprintf(&b, "connections\t%d\ngeeks\t%d\n", st.Connections, st.Geeks)
		if st.Oldest != nil {
			fmt.Fprintf(&b, "oldest\t%s\t%s\n", u.Name(st.Oldest.ID), u.Time(st.Oldest.ConnectedAt))
		}
		for _, t := range st.Topics {
			fmt.Fprintf(&b, "topic\t%s\t%d\n", u.Name(t.Topic), t.Connections)
		}
		_, err := fmt.Fprint(out, b.String())
		return err
	}
	fmt.Fprintf(out, "%s %s open to %s %s\n",
		u.Title.Render(strconv.Itoa(st.Connections)), text.Plural(st.Connections, "connection"),
		u.Title.Render(strconv.Itoa(st.Geeks)), text.Plural(st.Geeks, "geek"))
	if st.Oldest != nil {
		fmt.Fprintf(out, "%s %s (%s, connected %s)\n", u.Label.Render("oldest"), u.Accent.Render(u.Name(st.Oldest.ID)), u.Name(st.Oldest.Geek), u.Time(st.Oldest.ConnectedAt))
	}
	if len(st.Topics) == 0 {
		return nil
	}
	rows := make([][]string, len(st.Topics))
	for i, t := range st.Topics {
		rows[i] = []string{u.Name(t.Topic), strconv.Itoa(t.Connections)}
	}
	return u.Table([]string{"TOPIC", "CONNECTIONS"}, rows)
}
