// Package control steers the rules at run time (docs/homeassistant.md):
// enable, disable, acknowledge and run a rule, from MQTT control topics
// (--control) or the HTTP API; it publishes every rule's retained state
// topic and, with --homeassistant, the Home Assistant discovery configs.
//
// Every action goes through Controller.Do, which logs it with its origin
// and counts it (mqtt_rules_control_total{action,origin}). Control
// messages arrive on the subscriber's reader (Offer), which only checks
// them and queues them, bounded and rate limited; one goroutine (Run)
// carries them out and makes every publish, so the retained topics are
// written in order.
package control

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqtt-rules/mqtt-rules/actions"
	"github.com/mqtt-rules/mqtt-rules/engine"
	"github.com/mqtt-rules/mqtt-rules/internal/homeassistant"
	"github.com/mqtt-rules/mqtt-rules/internal/ratelog"
	"github.com/mqtt-rules/mqtt-rules/rules"
)

// Actions, the `action` label of mqtt_rules_control_total.
const (
	ActionEnable  = "enable"
	ActionDisable = "disable"
	ActionAck     = "ack"
	ActionRun     = "run"
	ActionInvalid = "invalid" // a control message or request refused
)

// Origins, the `origin` label of mqtt_rules_control_total.
const (
	OriginMQTT = "mqtt"
	OriginHTTP = "http"
)

// actionNames and originNames are the labels in the order Counts gives
// them.
var (
	actionNames = [...]string{ActionEnable, ActionDisable, ActionAck, ActionRun, ActionInvalid}
	originNames = [...]string{OriginMQTT, OriginHTTP}
)

// MaxPayload is the largest control message (and HTTP run body) taken;
// larger ones are refused as invalid.
const MaxPayload = 1024

// DropFlood is the `reason` of mqtt_rules_messages_dropped_total for
// control messages dropped because they came faster than Config.Rate or
// found the queue full.
const DropFlood = "control_flood"

// DropStale is the `reason` of mqtt_rules_messages_dropped_total for a
// retained discovery config or state topic not checked for a removed
// rule because Config.MaxStale already waited (docs/homeassistant.md,
// "What appears in Home Assistant").
const DropStale = "control_stale"

// AckAll is the payload of BASE/rule/<name>/ack that acknowledges every
// firing key (docs/homeassistant.md, "Control topics"), as the Home
// Assistant button sends it. An empty payload is refused: it is what
// clearing a retained message delivers.
const AckAll = homeassistant.AckAll

// Defaults of Config.
const (
	DefaultStateInterval = time.Second
	DefaultQueue         = 256
	DefaultRate          = 20 // control messages per second, sustained
	DefaultBurst         = 100
	DefaultMaxStale      = 1 << 16 // retained topics waiting to be checked
)

// logEvery bounds how often refused and dropped control messages, and
// failed publishes, are logged.
const logEvery = 10 * time.Second

// Errors of Do. An unknown rule is engine.ErrNoRule.
var (
	ErrInvalid  = errors.New("invalid control")
	ErrTooLarge = fmt.Errorf("%w: payload larger than %d bytes", ErrInvalid, MaxPayload)
)

// Config configures a Controller.
type Config struct {
	Engine *engine.Engine // required
	// Publisher publishes the state topics and discovery configs;
	// required with Topics.
	Publisher actions.Publisher
	Logger    *slog.Logger // nil: discard

	// StatusTopic is the engine's status topic; the control topics are
	// under BASE, the status topic without its last level.
	StatusTopic string
	// Topics turns on the control topics BASE/rule/<name>/set, /ack and
	// /run and the retained state topics BASE/rule/<name>/state
	// (--control). It needs StatusTopic.
	Topics bool
	// HomeAssistant is the discovery prefix to publish Home Assistant
	// configs under; "" publishes none. It needs Topics.
	HomeAssistant string
	// ClientID and Version describe the engine instance to Home
	// Assistant (its device).
	ClientID string
	Version  string

	// StateInterval is the least time between two publishes of a rule's
	// state, but for a change of enabled (DefaultStateInterval).
	StateInterval time.Duration
	// Queue bounds the control messages waiting to be carried out
	// (DefaultQueue); Rate and Burst bound how fast they are taken
	// (DefaultRate per second, bursts of DefaultBurst). Others are
	// dropped and counted (DropFlood).
	Queue int
	Rate  float64
	Burst int
	// MaxStale bounds the retained discovery configs and state topics
	// that wait to be checked for a rule no longer loaded
	// (DefaultMaxStale): they are kept apart from the commands, each topic
	// once, so a broker replaying thousands at start floods nothing.
	// Beyond it they are dropped and counted (DropStale).
	MaxStale int
}

// Request is one control action.
type Request struct {
	Rule    string
	Action  string // ActionEnable, ActionDisable, ActionAck or ActionRun
	Key     string // ack: the key to acknowledge; "": every firing key
	Payload []byte // run: the payload the actions see
	Origin  string // OriginMQTT or OriginHTTP
}

// Result is what an action did, as the HTTP API answers it.
type Result struct {
	Rule   string `json:"rule"`
	Action string `json:"action"`
	// Changed is true when an enable or disable changed the rule.
	Changed bool `json:"changed"`
	// Acknowledged is how many firing keys an ack acknowledged.
	Acknowledged int `json:"acknowledged"`
	// Enabled and EnabledBy are the rule's state afterwards.
	Enabled   bool   `json:"enabled"`
	EnabledBy string `json:"enabled_by"`
}

// Count is one series of mqtt_rules_control_total.
type Count struct {
	Action, Origin string
	N              uint64
}

// Controller carries out control actions and keeps the retained topics.
// Its methods are safe for concurrent use; Run must be running for the
// MQTT side (Config.Topics) to work.
type Controller struct {
	eng        *engine.Engine
	pub        actions.Publisher
	log        *slog.Logger
	cfg        Config
	topics     bool
	ruleTopics string // "BASE/rule/"
	ha         *homeassistant.Options
	haNode     string // the discovery topics' node id

	queue chan command
	wake  chan struct{} // cap 1: something for Run in the fields below

	mu     sync.Mutex
	urgent map[string]struct{} // rules whose enabled changed: publish their state now
	resync bool                // the rule set may have changed
	// connGen counts the connections that came up; connUp is whether the
	// latest is up. Run republishes everything whenever connGen moved,
	// so a connection lost and regained while it was busy is not missed.
	connGen uint64
	connUp  bool
	failed  map[string]struct{} // topics whose publish failed: write them again
	// stale holds the retained discovery configs and state topics of this
	// engine to check for a rule no longer loaded, each once; at most
	// Config.MaxStale.
	stale    map[string]struct{}
	tokens   float64
	tokensAt time.Time

	// stateFilters caches, per rule set, its subscribed filters that can
	// match a state topic (see rulesWant).
	stateFilters atomic.Pointer[stateFilters]

	counts [len(actionNames)][len(originNames)]atomic.Uint64

	invalidLog ratelog.Limiter
	dropLog    ratelog.Limiter
	pubLog     ratelog.Limiter
	staleLog   ratelog.Limiter

	// Owned by Run.
	up       bool   // connected: the retained topics are kept
	gen      uint64 // the connGen last acted on
	everUp   bool
	checked  *rules.RuleSet // the set last checked for rules that match the state topics
	rs       *rules.RuleSet
	states   map[string]stateKey // by rule: the state last published
	configs  map[string][]byte   // discovery topic: the payload last published
	wantRS   *rules.RuleSet      // the set want and wantList are of
	want     map[string][]byte
	wantList []homeassistant.Config
}

// command is a control message queued for Run.
type command struct {
	req   Request
	topic string
}

// New checks cfg and returns a Controller.
func New(cfg Config) (*Controller, error) {
	if cfg.Engine == nil {
		return nil, errors.New("control: no engine")
	}
	if cfg.HomeAssistant != "" {
		cfg.Topics = true
	}
	c := &Controller{eng: cfg.Engine, pub: cfg.Publisher, log: cfg.Logger, topics: cfg.Topics}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if cfg.StateInterval <= 0 {
		cfg.StateInterval = DefaultStateInterval
	}
	if cfg.Queue <= 0 {
		cfg.Queue = DefaultQueue
	}
	if cfg.Rate <= 0 {
		cfg.Rate = DefaultRate
	}
	if cfg.Burst <= 0 {
		cfg.Burst = DefaultBurst
	}
	if cfg.MaxStale <= 0 {
		cfg.MaxStale = DefaultMaxStale
	}
	c.cfg = cfg
	c.tokens = float64(cfg.Burst)
	if c.topics {
		if cfg.StatusTopic == "" {
			return nil, errors.New("control topics need a status topic: they live under it (--status-topic is off)")
		}
		if strings.ContainsAny(cfg.StatusTopic, "+#\x00") {
			return nil, fmt.Errorf("status topic %q: must not hold '+', '#' or NUL", cfg.StatusTopic)
		}
		if cfg.Publisher == nil {
			return nil, errors.New("control: no publisher")
		}
		c.ruleTopics = RuleTopics(cfg.StatusTopic)
		c.queue = make(chan command, cfg.Queue)
		c.wake = make(chan struct{}, 1)
		c.states = map[string]stateKey{}
		c.configs = map[string][]byte{}
	}
	if cfg.HomeAssistant != "" {
		if strings.ContainsAny(cfg.HomeAssistant, "+#\x00") || strings.HasSuffix(cfg.HomeAssistant, "/") {
			return nil, fmt.Errorf("home assistant discovery prefix %q: must not end in '/' or hold '+', '#' or NUL", cfg.HomeAssistant)
		}
		c.ha = &homeassistant.Options{
			Prefix:      cfg.HomeAssistant,
			ClientID:    cfg.ClientID,
			Version:     cfg.Version,
			StatusTopic: cfg.StatusTopic,
			RuleTopics:  c.ruleTopics,
		}
		c.haNode = homeassistant.NodeID(cfg.ClientID)
	}
	return c, nil
}

// RuleTopics returns the start of the rules' control and state topics
// for a status topic: BASE + "/rule/", BASE being the status topic
// without its last level ("rule/" when it has one level only).
func RuleTopics(statusTopic string) string {
	if i := strings.LastIndexByte(statusTopic, '/'); i >= 0 {
		return statusTopic[:i] + "/rule/"
	}
	return "rule/"
}

// Filters returns the topic filters the engine must subscribe for the
// control topics (none without Config.Topics): the commands, the
// engine's own state topics and, with Home Assistant, its own discovery
// configs — the broker sends the retained ones on subscribing, so that
// those of rules removed while the engine was not running are cleared.
func (c *Controller) Filters() []string {
	if !c.topics {
		return nil
	}
	f := []string{c.ruleTopics + "+/set", c.ruleTopics + "+/ack", c.ruleTopics + "+/run", c.ruleTopics + "+/state"}
	if c.ha != nil {
		f = append(f, c.ha.Prefix+"/+/"+c.haNode+"/+/config")
	}
	return f
}

// Do carries out a control action now, logs it with its origin and counts
// it. An unknown rule (engine.ErrNoRule), action or a payload over
// MaxPayload (ErrInvalid) is counted as invalid and changes nothing.
func (c *Controller) Do(req Request) (Result, error) {
	res := Result{Rule: req.Rule, Action: req.Action}
	var err error
	switch req.Action {
	case ActionEnable, ActionDisable:
		res.Changed, err = c.eng.SetEnabled(req.Rule, req.Action == ActionEnable, req.Origin)
	case ActionAck:
		if len(req.Key) > MaxPayload {
			err = ErrTooLarge
			break
		}
		res.Acknowledged, err = c.eng.Ack(req.Rule, req.Key)
	case ActionRun:
		if len(req.Payload) > MaxPayload {
			err = ErrTooLarge
			break
		}
		err = c.eng.RunNow(req.Rule, req.Payload)
	default:
		err = fmt.Errorf("%w: unknown action %q", ErrInvalid, req.Action)
	}
	if err != nil && (errors.Is(err, engine.ErrNoRule) || errors.Is(err, engine.ErrDisabled) || errors.Is(err, ErrInvalid)) {
		c.refuse(req.Origin, req.Rule, "", err.Error())
		return res, err
	}
	c.count(req.Action, req.Origin)
	res.Enabled, res.EnabledBy, _ = c.eng.Enabled(req.Rule)
	attrs := []any{"action", req.Action, "rule", req.Rule, "origin", req.Origin}
	switch req.Action {
	case ActionEnable, ActionDisable:
		attrs = append(attrs, "changed", res.Changed)
	case ActionAck:
		attrs = append(attrs, "key", req.Key, "acknowledged", res.Acknowledged)
	case ActionRun:
		attrs = append(attrs, "payload_bytes", len(req.Payload))
	}
	if err != nil {
		c.log.Error("control action failed", append(attrs, "err", err)...)
		return res, err
	}
	c.log.Info("control action", attrs...)
	if res.Changed && c.topics {
		c.notify(func() {
			if c.urgent == nil {
				c.urgent = map[string]struct{}{}
			}
			c.urgent[req.Rule] = struct{}{}
		})
	}
	return res, nil
}

// Counts returns mqtt_rules_control_total, every action and origin,
// zeros included.
func (c *Controller) Counts() []Count {
	out := make([]Count, 0, len(actionNames)*len(originNames))
	for i, a := range actionNames {
		for j, o := range originNames {
			out = append(out, Count{Action: a, Origin: o, N: c.counts[i][j].Load()})
		}
	}
	return out
}

func (c *Controller) count(action, origin string) {
	for i, a := range actionNames {
		if a != action {
			continue
		}
		for j, o := range originNames {
			if o == origin {
				c.counts[i][j].Add(1)
			}
		}
	}
}

// refuse counts and logs (at a bounded rate) a control message or request
// that changes nothing.
func (c *Controller) refuse(origin, rule, topic, reason string) {
	c.count(ActionInvalid, origin)
	if n, ok := c.invalidLog.Allow(time.Now(), logEvery); ok {
		attrs := []any{"origin", origin, "reason", reason}
		if rule != "" {
			attrs = append(attrs, "rule", rule)
		}
		if topic != "" {
			attrs = append(attrs, "topic", topic)
		}
		if n > 0 {
			attrs = append(attrs, "also_refused", n)
		}
		c.log.Warn("control refused", attrs...)
	}
}

// notify changes what Run is told under mu, and wakes it.
func (c *Controller) notify(f func()) {
	if !c.topics {
		return
	}
	c.mu.Lock()
	f()
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// RulesChanged tells the controller that the rule set may have changed
// (after a reload): state topics and discovery configs follow at once.
// (Run also notices a new set by itself, within a StateInterval.)
func (c *Controller) RulesChanged() {
	c.notify(func() { c.resync = true })
}

// Connected tells the controller that the broker connection came up or
// went down. On the first connection it publishes every state topic and
// discovery config, on every later one it publishes them again (the
// broker may have lost its retained messages) — also when the connection
// went down and up again before Run got to it; while down it publishes
// nothing.
func (c *Controller) Connected(up bool) {
	c.notify(func() {
		if up {
			c.connGen++
		}
		c.connUp = up
	})
}
