// Package app is the running service: it wires the rule loader, the
// engine, the action executor, the MQTT connection and (without a broker
// URL) the embedded broker, and owns reloads and shutdown. cmd/mqtt-rules
// turns flags into a Config and calls it; tests start it in-process.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/mqtt-rules/mqtt-rules/actions"
	"github.com/mqtt-rules/mqtt-rules/engine"
	"github.com/mqtt-rules/mqtt-rules/internal/broker"
	"github.com/mqtt-rules/mqtt-rules/internal/control"
	"github.com/mqtt-rules/mqtt-rules/internal/httpapi"
	"github.com/mqtt-rules/mqtt-rules/internal/mqttc"
	"github.com/mqtt-rules/mqtt-rules/internal/statestore"
	"github.com/mqtt-rules/mqtt-rules/internal/statuspage"
	"github.com/mqtt-rules/mqtt-rules/internal/sun"
	"github.com/mqtt-rules/mqtt-rules/internal/watch"
	"github.com/mqtt-rules/mqtt-rules/rules"
)

// Config is what `mqtt-rules run` is told (docs/operations.md, Flags).
type Config struct {
	Rules          []string // rule files and directories
	Broker         string   // broker URL; "" starts the embedded broker
	EmbeddedBroker string   // listen address of the embedded broker

	ClientID   string
	Username   string
	Password   string
	CAFile     string
	CertFile   string
	KeyFile    string
	ShareGroup string
	Protocol   string // "5", "3.1.1" or "auto" ("": auto); docs/mqtt5.md
	// SessionExpiry is how long an MQTT 5 broker keeps the session while
	// the engine is away; 0: never expires.
	SessionExpiry time.Duration

	// Brokers are the config file's other brokers, which rules name in
	// broker: (docs/brokers.md).
	Brokers []BrokerConfig

	MaxPayload int // bytes; 0: no limit
	MaxKeys    int // keys per stateful rule; 0: engine.DefaultMaxKeys
	// MaxRemembered caps the topics state() and states() remember; 0:
	// engine.DefaultMaxRemembered.
	MaxRemembered int
	MaxHops       int // loop cutoff (docs/reliability.md, Loops); 0: engine.DefaultMaxHops

	// DeadLetterTopic receives webhooks that finally failed; "" for none.
	DeadLetterTopic string

	// AllowExec accepts exec actions (refused at load without it).
	AllowExec bool

	// TimeZone is where schedules run (nil: the machine's zone); Location
	// where the sun is (nil: none; sun rules do not load).
	TimeZone *time.Location
	Location *sun.Location

	// NoWatch turns off watching the rules paths; reloads then come from
	// Reload (SIGHUP) only.
	NoWatch bool

	// HTTP is the listen address of the status endpoints (docs/operations.md,
	// HTTP endpoints); "" or "off" serves none. HTTPToken, when set,
	// protects all but /healthz and /readyz.
	HTTP      string
	HTTPToken string
	Version   string

	// State is the file that keeps rule state across restarts; "" keeps it
	// in memory only.
	State string

	// StatusTopic gets a retained "online" while connected and "offline"
	// as the MQTT will and at shutdown (docs/homeassistant.md); "" is
	// DefaultStatusTopic, StatusTopicOff none. Control turns on the
	// control and state topics under it (--control); HomeAssistant, a
	// discovery prefix, publishes Home Assistant discovery configs and
	// implies Control (--homeassistant).
	StatusTopic   string
	Control       bool
	HomeAssistant string

	Logger *slog.Logger
}

// warnEmpty warns when the rules paths hold no rule: nothing will ever
// fire, and the paths searched are the likely mistake (running in the
// source tree, --rules defaults to ./rules, a Go package there).
func warnEmpty(log *slog.Logger, paths []string, rs *rules.RuleSet) {
	switch {
	case len(rs.Files) == 0:
		log.Warn("no rule files found: nothing will fire; rule files are *.yaml or *.yml under the --rules paths", "searched", paths)
	case len(rs.Rules) == 0:
		log.Warn("the rule files hold no rules: nothing will fire", "files", rs.Files)
	}
}

// DefaultEmbeddedBroker is where the embedded broker listens by default.
const DefaultEmbeddedBroker = "127.0.0.1:1883"

// App is a running engine.
type App struct {
	cfg    Config
	log    *slog.Logger
	loader *rules.Loader

	broker   *broker.Broker // nil with an external broker
	client   *mqttc.Client
	exec     *actions.Executor
	engine   *engine.Engine
	counters *engine.Counters

	// conns are the broker connections, the default one (client) first.
	conns []*conn

	reloadMu   sync.Mutex
	lastReload httpapi.Reload

	http       *httpapi.Running // nil without --http
	stopHTTP   context.CancelFunc
	store      *statestore.Store // nil without --state
	stopTimers context.CancelFunc
	timersDone chan struct{} // closed when the timer and state goroutines exited

	// Run-time control (control.go).
	clientID    string // the MQTT client id in use
	statusTopic string // "" without one
	control     *control.Controller
}

// Start loads the rules, starts the embedded broker when no broker URL is
// given, connects and subscribes. A rule set with errors, or an embedded
// broker that cannot listen, is an error; an unreachable broker is not: the
// connection keeps retrying in the background.
func Start(cfg Config) (*App, error) {
	a := &App{cfg: cfg, log: cfg.Logger, loader: rules.NewLoader()}
	if cfg.AllowExec {
		a.loader.Allow = []string{actions.KindExec.Gate}
	}
	a.loader.Location = cfg.Location
	a.loader.Brokers = brokerNames(cfg.Brokers)
	if err := checkBrokers(cfg.Brokers); err != nil {
		return nil, err
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if cfg.AllowExec && os.Getpid() == 1 {
		a.log.Warn("running as process 1 with --allow-exec: programs' orphans are not reaped; run the container with --init (docs/install.md)")
	}
	// Watch before the first load: a change made while it loads is seen.
	var w *watch.Watcher
	if !cfg.NoWatch {
		var err error
		if w, err = watch.New(cfg.Rules, watch.Options{Logger: a.log}); err != nil {
			return nil, err
		}
	}
	watching := false // Run owns the watcher from then on
	// One clean-up for every way Start can fail: it releases what Start
	// had started, in reverse order. Once the background goroutines run
	// they own the watcher and the state file, and stopping them (which
	// saves the state) releases both.
	started := false
	defer func() {
		if started {
			return
		}
		if a.stopHTTP != nil {
			a.stopHTTP()
		}
		switch {
		case a.stopTimers != nil:
			a.stopBackground()
		case a.store != nil:
			a.store.Close()
		}
		a.closeBroker()
		if w != nil && !watching {
			w.Close()
		}
	}()
	rs, err := a.loader.Load(cfg.Rules...)
	if err != nil {
		return nil, err
	}
	url := cfg.Broker
	if url == "" {
		addr := cfg.EmbeddedBroker
		if addr == "" {
			addr = DefaultEmbeddedBroker
		}
		if a.broker, err = broker.Start(addr, a.log); err != nil {
			return nil, err
		}
		url = a.broker.URL()
		a.log.Info("embedded broker started", "addr", a.broker.Addr())
	}
	a.counters = engine.NewCounters()
	if err := a.prepareControl(); err != nil {
		return nil, err
	}
	will, online := a.statusMessages()
	a.client, err = mqttc.New(mqttc.Options{
		Broker:        url,
		ClientID:      a.clientID,
		Username:      cfg.Username,
		Password:      cfg.Password,
		CAFile:        cfg.CAFile,
		CertFile:      cfg.CertFile,
		KeyFile:       cfg.KeyFile,
		ShareGroup:    cfg.ShareGroup,
		Protocol:      cfg.Protocol,
		SessionExpiry: cfg.SessionExpiry,
		Logger:        a.log,
		OnMessage:     a.onMessage,

		Will:               will,
		OnlineMessage:      online,
		OnConnectionChange: a.onConnection,
	})
	if err != nil {
		return nil, err
	}
	a.conns = []*conn{{url: url, client: a.client}}
	if err := a.connectOthers(); err != nil {
		return nil, err
	}
	var pub actions.Publisher = a.client // one broker: no routing on the message path
	if len(a.conns) > 1 {
		r := router{}
		for _, c := range a.conns {
			r[c.name] = c.client
		}
		pub = r
	}
	a.exec = actions.NewExecutor(actions.Config{
		Publisher:       pub,
		Logger:          a.log,
		Reporter:        a.counters,
		DeadLetterTopic: cfg.DeadLetterTopic,
	})
	a.engine = engine.New(engine.Config{
		Actions:       a.exec,
		Logger:        a.log,
		Counters:      a.counters,
		MaxPayload:    cfg.MaxPayload,
		MaxKeys:       cfg.MaxKeys,
		MaxRemembered: cfg.MaxRemembered,
		TimeZone:      cfg.TimeZone,
		Location:      cfg.Location,
		MaxHops:       cfg.MaxHops,
	})
	a.exec.SetLoopGuard(a.engine) // an exec's published output is one hop on
	a.engine.SetRules(rs)
	releaseLoadGarbage()
	if cfg.State != "" {
		var damaged string
		if a.store, damaged, err = statestore.OpenOrMoveAside(cfg.State); err != nil {
			return nil, err
		}
		if damaged != "" {
			a.log.Error("state file was damaged: moved aside, starting without saved state", "file", cfg.State, "moved_to", damaged)
		}
		n, err := a.engine.Restore(a.store)
		if err != nil {
			return nil, fmt.Errorf("state file %s: %w", cfg.State, err)
		}
		a.log.Info("state restored", "file", cfg.State, "keys", n)
	}
	// Before the watcher starts: a reload writes these too.
	if err := a.newController(); err != nil {
		return nil, err
	}
	subs := 0
	for _, c := range a.conns {
		c.subs = a.filtersOf(c, rs)
		subs += len(c.subs)
		// Not connected yet: this records the subscriptions, made on connect.
		if err := c.client.Subscribe(context.Background(), c.subs...); err != nil {
			return nil, err
		}
	}
	a.lastReload = httpapi.Reload{At: time.Now(), Rules: len(rs.Rules)}
	var bg context.Context
	bg, a.stopTimers = context.WithCancel(context.Background())
	a.timersDone = make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { a.engine.Run(bg) })
	wg.Go(func() { a.control.Run(bg) })
	if a.store != nil {
		wg.Go(func() { a.engine.Persist(bg, a.store, time.Second) })
	}
	if w != nil {
		watching = true
		wg.Go(func() {
			w.Run(bg, func() { a.Reload(bg) })
		})
	}
	go func() {
		wg.Wait()
		close(a.timersDone)
	}()
	if cfg.HTTP != "" && cfg.HTTP != "off" {
		var hctx context.Context
		hctx, a.stopHTTP = context.WithCancel(context.Background())
		h := httpapi.NewHandler(a, httpapi.Options{Token: cfg.HTTPToken, LocalOnly: httpapi.IsLoopback(cfg.HTTP), Logger: a.log, Version: cfg.Version, Control: a.control})
		statuspage.New(a, statuspage.Options{Version: cfg.Version, Logger: a.log, Control: cfg.HTTPToken != ""}).Register(hctx, h)
		if a.http, err = httpapi.Start(hctx, cfg.HTTP, h, a.log); err != nil {
			return nil, err
		}
	}
	for _, c := range a.conns {
		c.client.Start()
	}
	// Subscribing a large set makes garbage of its own (one SUBSCRIBE per
	// filter under MQTT 5): return it too, once, when first ready.
	go a.releaseWhenReady(bg)
	a.log.Info("rules loaded", "rules", len(rs.Rules), "files", len(rs.Files), "subscriptions", subs)
	warnEmpty(a.log, cfg.Rules, rs)
	for _, w := range rs.Warnings() {
		a.log.Warn("rule may loop", "file", w.File, "line", w.Line, "rule", w.Rule, "err", w.Msg)
	}
	started = true
	return a, nil
}

func (a *App) onMessage(m mqttc.Message) {
	if a.control.Offer(m.Topic, m.Payload, m.Retained) {
		return // a control message: not the rules'
	}
	a.engine.Handle(engine.Message{Topic: m.Topic, Payload: m.Payload, QoS: m.QoS, Retained: m.Retained, Properties: m.Properties})
}

// Engine returns the engine, for status and tests.
func (a *App) Engine() *engine.Engine { return a.engine }

// Rules returns the active rule set.
func (a *App) Rules() *rules.RuleSet { return a.engine.Rules() }

// Counters returns the engine's counters.
func (a *App) Counters() *engine.Counters { return a.counters }

// Trace returns the last evaluations of a rule, oldest first.
func (a *App) Trace(rule string) []engine.Evaluation { return a.engine.Trace(rule) }

// Keys returns a stateful rule's pending, firing, cooldown and absence
// keys (at most limit, 0: all) and how many keys it tracks.
func (a *App) Keys(rule string, limit int) ([]engine.KeyState, int) {
	return a.engine.Keys(rule, limit)
}

// HTTPAddr returns the address the HTTP endpoints listen on, or "".
func (a *App) HTTPAddr() string {
	if a.http == nil {
		return ""
	}
	return a.http.Addr()
}

var _ httpapi.Status = (*App)(nil)

// Ready reports whether the engine is connected to every broker and
// subscribed to every filter of its rule set.
func (a *App) Ready() bool {
	for _, c := range a.conns {
		if !c.client.Ready() {
			return false
		}
	}
	return true
}

// BrokerAddr returns the embedded broker's address, or "" with an external
// broker.
func (a *App) BrokerAddr() string {
	if a.broker == nil {
		return ""
	}
	return a.broker.Addr()
}

// LastReload returns how the last load of the rules went.
func (a *App) LastReload() httpapi.Reload {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	return a.lastReload
}

// Reload loads the rule paths again and, when the set is valid, swaps it
// in: the set is swapped, then the filters it adds are subscribed, then
// those it no longer needs unsubscribed, so no message is lost across it
// and a new filter's retained messages meet the new rules. A set the
// broker refuses a filter of is swapped back out.
// An invalid set changes nothing; its errors are returned (rules.Errors).
// Every attempt is counted, also one that changes nothing.
func (a *App) Reload(ctx context.Context) error {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	start := time.Now()
	err := a.reload(ctx, start)
	if err != nil {
		a.logReloadError(err)
	}
	a.counters.Reloaded(err == nil)
	a.lastReload = httpapi.Reload{At: start, Took: time.Since(start), Err: err, Rules: len(a.engine.Rules().Rules), Reload: true}
	return err
}

func (a *App) reload(ctx context.Context, start time.Time) error {
	rs, err := a.loader.Load(a.cfg.Rules...)
	if err != nil {
		return err
	}
	old := a.engine.Rules()
	// Swap, then subscribe: the broker sends a new filter's retained
	// messages right after its SUBACK, and they must meet the rules that
	// asked for them (subscribing first left them to the old set). No
	// message can arrive on a new filter before it is subscribed; one on
	// a topic the running subscriptions already cover meets the new set,
	// as it should.
	a.engine.SetRules(rs)
	added, removed, err := a.resubscribe(ctx, rs)
	if err != nil {
		// The set is rejected: the running set comes back (rules the
		// rejected set had changed start their state afresh).
		a.engine.SetRules(old)
		return fmt.Errorf("reload: %w", err)
	}
	releaseLoadGarbage()
	ra, rr, rc := ruleChanges(old, rs)
	a.control.RulesChanged()
	var subscribed, unsubscribed any = added, removed // by broker
	if len(a.conns) == 1 {
		subscribed, unsubscribed = added[DefaultBrokerName], removed[DefaultBrokerName]
	}
	a.log.Info("rules reloaded", "rules", len(rs.Rules), "added", ra, "removed", rr, "changed", rc,
		"subscribed", subscribed, "unsubscribed", unsubscribed, "took", time.Since(start).Round(time.Microsecond))
	return nil
}

// releaseLoadGarbage returns the memory a load used to the system: parsing
// and compiling 10,000 rules allocates tens of megabytes that the heap
// would otherwise keep as resident memory until it happened to shrink.
// Loads are rare, so the full collection it costs does not matter.
func releaseLoadGarbage() { debug.FreeOSMemory() }

// releaseWhenReady releases the start's garbage once every broker is
// subscribed (or ctx ends): for 10,000 rules, the subscriptions' packets
// and acknowledgements would otherwise stay resident until the heap grew
// to its next collection.
func (a *App) releaseWhenReady(ctx context.Context) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for !a.Ready() {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
	releaseLoadGarbage()
}

// logReloadError logs a rejected reload: one line per problem, with its
// location, then a summary.
func (a *App) logReloadError(err error) {
	var es rules.Errors
	if errors.As(err, &es) {
		for _, e := range es {
			a.log.Error("rule error", "file", e.File, "line", e.Line, "col", e.Col, "rule", e.Rule, "err", e.Msg)
		}
		a.log.Error("reload rejected; the previous rules keep running", "errors", len(es))
		return
	}
	a.log.Error("reload failed; the previous rules keep running", "err", err)
}

// diff returns what is in b but not a, and in a but not b; both sorted.
func diff(a, b []string) (added, removed []string) {
	for _, s := range b {
		if !slices.Contains(a, s) {
			added = append(added, s)
		}
	}
	for _, s := range a {
		if !slices.Contains(b, s) {
			removed = append(removed, s)
		}
	}
	return added, removed
}

// ruleChanges names the rules added, removed and changed from old to next.
func ruleChanges(old, next *rules.RuleSet) (added, removed, changed []string) {
	for _, r := range next.Rules {
		o := old.Rule(r.Name)
		switch {
		case o == nil:
			added = append(added, r.Name)
		case o.Definition != r.Definition:
			changed = append(changed, r.Name)
		}
	}
	for _, r := range old.Rules {
		if next.Rule(r.Name) == nil {
			removed = append(removed, r.Name)
		}
	}
	return added, removed, changed
}

// Close stops taking messages, stops the timers (saving state a last
// time), lets in-flight actions finish until ctx ends — their publishes,
// dead letters included, still go out — then disconnects and stops the
// embedded broker.
func (a *App) Close(ctx context.Context) error {
	for _, c := range a.conns {
		c.client.StopReceiving()
	}
	a.stopBackground()
	errs := []error{a.exec.Close(ctx)}
	errs = append(errs, closeConns(ctx, a.conns))
	if a.http != nil {
		a.stopHTTP()
		<-a.http.Done()
	}
	a.closeBroker()
	return errors.Join(errs...)
}

// stopBackground stops the timers and the state saver, saves a last time
// — after the timers stopped, so that none fires after the save and again
// after a restart — and closes the state file.
func (a *App) stopBackground() {
	a.stopTimers()
	<-a.timersDone
	if a.store != nil {
		a.engine.SaveState(a.store)
		if err := a.store.Close(); err != nil {
			a.log.Warn("state file close", "err", err)
		}
	}
}

func (a *App) closeBroker() {
	if a.broker != nil {
		if err := a.broker.Close(); err != nil {
			a.log.Warn("embedded broker close", "err", err)
		}
	}
}
