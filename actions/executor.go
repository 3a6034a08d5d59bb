package actions

import (
	"context"
	"errors"
	"fmt"
	"github.com/mqtt-rules/mqtt-rules/internal/ratelog"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults used for the zero fields of a Config.
const (
	DefaultWebhookQueue       = 1000
	DefaultWebhookConcurrency = 4
	DefaultWebhookIdle        = time.Minute
	DefaultMaxDestinations    = 256
	DefaultRetryBase          = 500 * time.Millisecond
	DefaultRetryMax           = 30 * time.Second
	DefaultUserAgent          = "mqtt-rules"
)

// dropLogEvery bounds how often one source of drops writes a log line.
const dropLogEvery = 10 * time.Second

// Errors reported to the Reporter (wrapped with context) for actions that
// could not run.
var (
	// ErrShuttingDown is the outcome of an action handed to a closed
	// Executor, or of a webhook cancelled because Close stopped waiting.
	ErrShuttingDown = errors.New("shutting down")
	// ErrNoConnection is the outcome of a publish action on an Executor
	// without a Publisher.
	ErrNoConnection = errors.New("no MQTT connection")
	// ErrTooManyDestinations is the outcome of a webhook to a new
	// destination while Config.MaxDestinations destinations are active; it
	// is counted as a drop with reason "too_many_destinations".
	ErrTooManyDestinations = errors.New("too many webhook destinations")
)

// Config configures an Executor. Every zero field takes its default.
type Config struct {
	// Publisher sends publish actions. With none, every publish action
	// fails with ErrNoConnection.
	Publisher Publisher
	// Logger receives log actions and the executor's own warnings
	// (default: discard).
	Logger *slog.Logger
	// HTTPClient sends webhooks (default: a client that keeps
	// WebhookConcurrency idle connections per host and has no overall
	// timeout, since every attempt carries its own).
	HTTPClient *http.Client
	// Reporter learns every outcome and every drop (default: nobody).
	Reporter Reporter

	// WebhookQueue is how many webhook requests may wait per destination
	// (scheme://host:port); beyond it requests are dropped as "queue_full".
	WebhookQueue int
	// WebhookConcurrency is how many requests run at once per destination.
	WebhookConcurrency int
	// WebhookIdle is how long a destination may go without requests
	// before its workers exit; the next request starts them again.
	WebhookIdle time.Duration
	// MaxDestinations bounds how many destinations have workers at once;
	// a request to another one is dropped as "too_many_destinations".
	MaxDestinations int

	// RetryBase and RetryMax shape the backoff between webhook attempts:
	// the ceiling doubles from RetryBase per attempt up to RetryMax, and a
	// Retry-After is honoured up to RetryMax.
	RetryBase time.Duration
	RetryMax  time.Duration
	// UserAgent is sent with webhooks that do not set one.
	UserAgent string

	// ExecConcurrency is how many exec programs run at once; ExecQueue how
	// many may wait, beyond which they are dropped as "queue_full".
	ExecConcurrency int
	ExecQueue       int
	// ExecOutput is how many bytes of a program's stdout, and of its
	// stderr, are kept.
	ExecOutput int

	// DeadLetterTopic, when set, receives every webhook that finally
	// failed, as JSON with the rule, the error and the rendered request
	// (secrets redacted), published at QoS 1 through Publisher.
	DeadLetterTopic string
}

// Executor runs Requests: log actions at once, publish actions through the
// Publisher, webhooks on per-destination worker pools with bounded queues,
// per-attempt timeouts and retries. It is safe for concurrent use.
type Executor struct {
	pub       Publisher
	log       *slog.Logger
	client    *http.Client
	ownClient bool
	rep       Reporter
	queueCap  int
	workers   int
	idle      time.Duration
	maxDests  int
	retryBase time.Duration
	retryMax  time.Duration
	ua        string

	deadLetterTopic string

	guard atomic.Pointer[LoopGuard] // see SetLoopGuard

	propsDropped sync.Map // rule names whose dropped MQTT 5 properties were logged

	execWorkers  int
	execWaiting  int // how many programs may wait for a worker
	execOutput   int
	execQueue    chan *Request // closed by Close; capacity execWorkers+execWaiting
	execInFlight int           // accepted, not finished; guarded by mu
	execOnce     sync.Once
	execDrops    ratelog.Limiter

	// base is the parent of every webhook attempt and backoff wait; abort
	// cancels it when Close stops waiting. It is the executor's lifetime,
	// not a request's.
	base  context.Context
	abort context.CancelFunc

	closing atomic.Bool // mirrors closed for the lock-free log/publish path

	mu     sync.Mutex
	closed bool
	dests  map[string]*destination

	wg sync.WaitGroup // every worker goroutine

	pubDrops  ratelog.Limiter // publishes refused with ErrQueueFull
	destDrops ratelog.Limiter // webhooks refused with ErrTooManyDestinations
	cancelled atomic.Int64
}

// destination is the queue and worker pool of one scheme://host[:port].
type destination struct {
	key   string
	kind  *Kind // of the request that opened it: webhook or notify
	queue chan *Request
	busy  atomic.Int32 // workers running a request
	drops ratelog.Limiter

	// Guarded by Executor.mu.
	lastUsed time.Time
	retired  bool
}

// NewExecutor returns an Executor ready to run requests. Release it with
// Close.
func NewExecutor(cfg Config) *Executor {
	x := &Executor{
		pub:       cfg.Publisher,
		log:       cfg.Logger,
		client:    cfg.HTTPClient,
		rep:       cfg.Reporter,
		queueCap:  orDefault(cfg.WebhookQueue, DefaultWebhookQueue),
		workers:   orDefault(cfg.WebhookConcurrency, DefaultWebhookConcurrency),
		idle:      orDefault(cfg.WebhookIdle, DefaultWebhookIdle),
		maxDests:  orDefault(cfg.MaxDestinations, DefaultMaxDestinations),
		retryBase: orDefault(cfg.RetryBase, DefaultRetryBase),
		retryMax:  orDefault(cfg.RetryMax, DefaultRetryMax),
		ua:        cfg.UserAgent,
		dests:     make(map[string]*destination),

		deadLetterTopic: cfg.DeadLetterTopic,

		execWorkers: orDefault(cfg.ExecConcurrency, DefaultExecConcurrency),
		execOutput:  orDefault(cfg.ExecOutput, DefaultExecOutput),
		execWaiting: orDefault(cfg.ExecQueue, DefaultExecQueue),
	}
	x.execQueue = make(chan *Request, x.execWorkers+x.execWaiting)
	if x.retryMax < x.retryBase {
		x.retryMax = x.retryBase
	}
	if x.ua == "" {
		x.ua = DefaultUserAgent
	}
	if x.log == nil {
		x.log = slog.New(slog.DiscardHandler)
	}
	if x.rep == nil {
		x.rep = nopReporter{}
	}
	if x.client == nil {
		x.client = defaultClient(x.workers)
		x.ownClient = true
	}
	x.base, x.abort = context.WithCancel(context.Background())
	return x
}

func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

func defaultClient(perHost int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          max(100, perHost),
		MaxIdleConnsPerHost:   perHost,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}}
}

// Do runs req without blocking on the network: a log action is written
// before Do returns, a publish is handed to the Publisher, a webhook is
// queued for its destination. The Reporter learns the outcome exactly once
// per request, from Do itself or later from another goroutine.
//
// A request refused for a full queue is reported twice over: as a drop
// (Dropped with reason "queue_full") and as a failed action (ActionDone with
// an error wrapping ErrQueueFull), so both the drop and the action error
// counters see it.
func (x *Executor) Do(req Request) {
	var once reportOnce
	defer func() {
		if r := recover(); r != nil {
			x.log.Error("action panicked", "rule", req.Rule, "topic", req.Topic, "action", req.Kind.String(), "panic", r)
			if once.claim() {
				x.rep.ActionDone(req.Rule, req.Kind, fmt.Errorf("%s action panicked: %v", req.Kind, r), 0)
			}
		}
	}()
	if x.closing.Load() {
		once.claim()
		x.rep.ActionDone(req.Rule, req.Kind, fmt.Errorf("%s: %w", req.Kind, ErrShuttingDown), 0)
		return
	}
	if req.Action == nil {
		once.claim()
		x.rep.ActionDone(req.Rule, req.Kind, fmt.Errorf("%s request without an action", req.Kind), 0)
		return
	}
	req.Action.run(x, &req, &once)
}

// enqueue queues a remote action (a webhook, a notification) for its
// destination's workers, starting them when needed, or reports why it
// cannot.
func (x *Executor) enqueue(req *Request, a remote, once *reportOnce) {
	key, err := a.destination(req.Secrets)
	if err != nil {
		once.claim()
		x.rep.ActionDone(req.Rule, req.Kind, err, 0)
		return
	}
	r := *req
	now := time.Now()
	label, _ := a.target(req.Secrets)

	x.mu.Lock()
	if x.closed {
		x.mu.Unlock()
		once.claim()
		x.rep.ActionDone(req.Rule, req.Kind, fmt.Errorf("%s: %w", req.Kind, ErrShuttingDown), 0)
		return
	}
	d := x.dests[key]
	if d == nil {
		if len(x.dests) >= x.maxDests {
			x.mu.Unlock()
			once.claim()
			x.rep.Dropped(req.Rule, req.Kind, "too_many_destinations")
			x.rep.ActionDone(req.Rule, req.Kind, fmt.Errorf("%s: %w (%d active)", label, ErrTooManyDestinations, x.maxDests), 0)
			if n := x.destDrops.Count(now, dropLogEvery); n > 0 {
				x.log.Warn("too many destinations, dropping requests", "rule", req.Rule, "action", req.Kind.String(),
					"destination", key, "max_destinations", x.maxDests, "dropped", n)
			}
			return
		}
		d = &destination{key: key, kind: req.Kind, queue: make(chan *Request, x.queueCap)}
		x.dests[key] = d
		x.wg.Add(x.workers)
		for range x.workers {
			go x.work(d)
		}
	}
	d.lastUsed = now
	select {
	case d.queue <- &r:
		once.claim() // the worker reports from here on
		x.mu.Unlock()
		return
	default:
	}
	n := d.drops.Count(now, dropLogEvery) // under mu, so a retiring destination flushes every drop
	x.mu.Unlock()

	once.claim()
	x.rep.Dropped(req.Rule, req.Kind, "queue_full")
	x.rep.ActionDone(req.Rule, req.Kind, fmt.Errorf("%s: %w", label, ErrQueueFull), 0)
	if n > 0 {
		x.log.Warn(req.Kind.String()+" queue full, dropping requests", "rule", req.Rule, "action", req.Kind.String(),
			"destination", key, "queue", x.queueCap, "dropped", n)
	}
}

// work is one worker of d. It exits when d's queue is closed: by Close, or
// by the worker itself when d has been idle for x.idle.
func (x *Executor) work(d *destination) {
	defer x.wg.Done()
	idle := time.NewTimer(x.idle)
	defer idle.Stop()
	for {
		select {
		case r, ok := <-d.queue:
			if !ok {
				return
			}
			d.busy.Add(1)
			x.runRemote(r)
			d.busy.Add(-1)
			idle.Reset(x.idle)
		case <-idle.C:
			x.maybeRetire(d)
			idle.Reset(x.idle)
		}
	}
}

// maybeRetire closes d's queue, so its workers exit, when it has nothing to
// do and has had no request for x.idle.
func (x *Executor) maybeRetire(d *destination) {
	x.mu.Lock()
	if x.closed || d.retired || len(d.queue) > 0 || d.busy.Load() > 0 || time.Since(d.lastUsed) < x.idle {
		x.mu.Unlock()
		return
	}
	n := x.retire(d)
	x.mu.Unlock()
	x.logUnloggedDrops(d, n)
}

// retire removes d and closes its queue; x.mu must be held. It returns the
// drops not yet logged.
func (x *Executor) retire(d *destination) int {
	d.retired = true
	delete(x.dests, d.key)
	close(d.queue)
	return d.drops.Flush()
}

func (x *Executor) logUnloggedDrops(d *destination, n int) {
	if n > 0 {
		x.log.Warn(d.kind.String()+" queue full, dropped requests", "action", d.kind.String(), "destination", d.key, "queue", x.queueCap, "dropped", n)
	}
}

// noteDroppedProperties logs, once per rule, that a publish's MQTT 5
// properties are not sent because its broker speaks MQTT 3.1.1.
func (x *Executor) noteDroppedProperties(rule string, p *Publish) {
	d, ok := x.pub.(PropertyDropper)
	if !ok || !d.DropsProperties(p.Broker) {
		return
	}
	if _, logged := x.propsDropped.LoadOrStore(rule, true); !logged {
		broker := p.Broker
		if broker == "" {
			broker = "default"
		}
		x.log.Warn("MQTT 5 properties not sent: the broker speaks MQTT 3.1.1 (logged once per rule)", "rule", rule, "broker", broker, "topic", p.Topic)
	}
}

// SetLoopGuard makes the executor ask g before it publishes for a rule
// after the fact (an exec's output). Until it is set, such publishes are
// made unchecked.
func (x *Executor) SetLoopGuard(g LoopGuard) { x.guard.Store(&g) }

// Close stops taking requests (later ones fail with ErrShuttingDown) and
// waits until every queued and running webhook has finished. When ctx ends
// first it cancels the rest, each still reported once with an error
// wrapping ErrShuttingDown, waits for the workers to exit and returns
// ctx.Err(). Publishes already handed to the Publisher are its business.
func (x *Executor) Close(ctx context.Context) error {
	type flushed struct {
		dest *destination
		n    int
	}
	var unlogged []flushed
	x.mu.Lock()
	if !x.closed {
		x.closed = true
		x.closing.Store(true)
		for _, d := range x.dests {
			if n := x.retire(d); n > 0 {
				unlogged = append(unlogged, flushed{d, n})
			}
		}
		close(x.execQueue)
	}
	x.mu.Unlock()
	for _, f := range unlogged {
		x.logUnloggedDrops(f.dest, f.n)
	}

	done := make(chan struct{})
	go func() { // exits once every worker has; after abort that is prompt
		x.wg.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		x.abort()
		<-done
		err = ctx.Err()
	}
	x.abort()

	if n := x.cancelled.Swap(0); n > 0 {
		x.log.Warn("actions cancelled at shutdown", "cancelled", n)
	}
	if n := x.pubDrops.Flush(); n > 0 {
		x.log.Warn("publish queue full, dropped publishes", "action", "publish", "dropped", n)
	}
	if n := x.execDrops.Flush(); n > 0 {
		x.log.Warn("exec queue full, dropped programs", "action", "exec", "dropped", n)
	}
	if n := x.destDrops.Flush(); n > 0 {
		x.log.Warn("too many destinations, dropped requests", "max_destinations", x.maxDests, "dropped", n)
	}
	if x.ownClient {
		x.client.CloseIdleConnections()
	}
	closeNotifyIdle()
	return err
}

// destinations returns how many destinations have workers (for tests).
func (x *Executor) destinations() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return len(x.dests)
}

// reportOnce makes sure a request's outcome is reported once, even when a
// panic or a misbehaving Publisher would report it again.
type reportOnce struct{ done atomic.Bool }

// claim returns true the first time only.
func (o *reportOnce) claim() bool { return o.done.CompareAndSwap(false, true) }

type nopReporter struct{}

func (nopReporter) ActionDone(string, *Kind, error, time.Duration) {}
func (nopReporter) Dropped(string, *Kind, string)                  {}

var _ Reporter = nopReporter{}
