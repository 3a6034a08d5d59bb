// Package watch tells its caller when the rule files under a set of rules
// paths have changed, so that the caller can reload them (README.md,
// Running against your broker: rules hot-reload).
package watch

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/mqtt-rules/mqtt-rules/rules"
)

const (
	// DefaultDebounce is the quiet period used when Options.Debounce is zero.
	DefaultDebounce = 200 * time.Millisecond

	// maxDelayFactor bounds how long continuous activity can postpone a
	// check, in multiples of the debounce period.
	maxDelayFactor = 25
	// maxTriggers bounds the event names remembered for one check's log.
	maxTriggers = 64
	// maxSymlinkHops bounds how many symbolic links are followed from one
	// path, as the kernel does.
	maxSymlinkHops = 40
)

// Options configures a Watcher.
type Options struct {
	// Debounce is how long the files under the paths must be left alone
	// before they are checked; zero means DefaultDebounce. Continuous
	// activity postpones a check by at most 25 times Debounce.
	Debounce time.Duration
	// Logger receives a debug record for every check (what triggered it and
	// whether the rule files changed) and warnings about watch errors; nil
	// discards them.
	Logger *slog.Logger
}

// Watcher reports changes to the set of rule files under some rules paths
// and to their content.
//
// Create it before loading the rules for the first time: the rule files as
// they are when New returns are the baseline the first change is measured
// against.
type Watcher struct {
	paths    []string // absolute
	debounce time.Duration
	maxDelay time.Duration
	log      *slog.Logger
	fsw      *fsnotify.Watcher
	running  atomic.Bool

	// Owned by New, then by Run's goroutine.
	dirs map[string]*dirWatch // the directories watched, by real path
	last snapshot             // the rule files as last checked

	// afterCheck, when set (by tests, before Run), is called by Run's
	// goroutine after every check.
	afterCheck func(checkResult)
}

// checkResult describes one completed check, for tests.
type checkResult struct {
	triggers []string // the event names (or errors) that led to the check
	changed  bool     // whether the callback was called
}

// dirWatch says which events in a watched directory matter.
type dirWatch struct {
	tree     bool            // every entry: the directory is part of a rules tree
	names    map[string]bool // otherwise only these entries, and hidden ones
	required bool            // a rules path cannot be watched without it
}

// New starts watching the rules paths, each a rule file or a directory of
// them, and records the rule files found as the baseline. It fails when a
// path does not exist or cannot be watched.
func New(paths []string, opts Options) (*Watcher, error) {
	if len(paths) == 0 {
		return nil, errors.New("watch: no rules paths")
	}
	if opts.Debounce < 0 {
		return nil, fmt.Errorf("watch: negative debounce %s", opts.Debounce)
	}
	w := &Watcher{
		debounce: opts.Debounce,
		log:      opts.Logger,
	}
	if w.debounce == 0 {
		w.debounce = DefaultDebounce
	}
	w.maxDelay = maxDelayFactor * w.debounce
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, fmt.Errorf("watch: rules path %s: %w", p, err)
		}
		if _, err := os.Stat(abs); err != nil {
			return nil, fmt.Errorf("watch: rules path %s: %w", p, err)
		}
		w.paths = append(w.paths, abs)
	}
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch: %w", err)
	}
	w.fsw = fsw
	if err := w.sync(); err != nil {
		_ = fsw.Close()
		return nil, fmt.Errorf("watch: %w", err)
	}
	w.last = w.scan()
	w.log.Debug("rules watch started", "paths", w.paths, "dirs", len(w.dirs), "files", len(w.last.files))
	return w, nil
}

// Run calls changed each time the rule files have changed: after activity
// under the paths has gone quiet for the debounce period, and only when the
// set of rule files or the content of one of them differs from the last
// check (or from when New returned). Bursts of activity give one call;
// writes that leave every byte the same give none. changed is called from
// Run's goroutine, one call at a time.
//
// Run blocks until ctx ends and then returns nil; it releases the Watcher,
// so it may be called only once.
func (w *Watcher) Run(ctx context.Context, changed func()) error {
	if !w.running.CompareAndSwap(false, true) {
		return errors.New("watch: Run called more than once")
	}
	defer w.fsw.Close()

	timer := time.NewTimer(w.debounce)
	timer.Stop()
	defer timer.Stop()
	var (
		due      <-chan time.Time // non-nil while a check is pending
		since    time.Time        // when the pending check's first event came
		events   int
		triggers []string
	)
	dirty := func(what string) {
		now := time.Now()
		if due == nil {
			since = now
		}
		events++
		if len(triggers) < maxTriggers && !slices.Contains(triggers, what) {
			triggers = append(triggers, what)
		}
		wait := min(w.debounce, since.Add(w.maxDelay).Sub(now))
		timer.Reset(max(wait, 0))
		due = timer.C
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.fsw.Events:
			if !ok {
				return errors.New("watch: watcher closed")
			}
			if w.relevant(ev.Name) {
				dirty(ev.Name)
			}
		case err, ok := <-w.fsw.Errors:
			if !ok {
				return errors.New("watch: watcher closed")
			}
			// Events may have been lost (an overflowing queue): a full
			// rescan finds whatever they were about.
			w.log.Warn("rules watch: event error, rescanning", "err", err)
			dirty("error: " + err.Error())
		case <-due:
			due = nil
			if time.Since(since) < w.maxDelay {
				// An event already waiting means the files were not left
				// alone (Run was slow to get here): not quiet yet.
				select {
				case ev, ok := <-w.fsw.Events:
					if !ok {
						return errors.New("watch: watcher closed")
					}
					if w.relevant(ev.Name) {
						dirty(ev.Name)
						continue
					}
				default:
				}
			}
			w.check(changed, events, triggers)
			events, triggers = 0, nil
		}
	}
}

// Close releases a Watcher whose Run is never called. Run releases the
// Watcher itself when it returns; a Close while Run is running makes Run
// return an error.
func (w *Watcher) Close() error {
	if err := w.fsw.Close(); err != nil {
		return fmt.Errorf("watch: %w", err)
	}
	return nil
}

// check brings the watches up to date, compares the rule files with the last
// check and calls changed when they differ.
func (w *Watcher) check(changed func(), events int, triggers []string) {
	if err := w.sync(); err != nil {
		w.log.Warn("rules watch: cannot watch a rules path", "err", err)
	}
	now := w.scan()
	differs := !now.equal(w.last)
	w.log.Debug("rules watch: checked",
		"events", events, "triggers", triggers[:min(len(triggers), 5)], "changed", differs)
	if differs {
		w.last = now
		changed()
	}
	if w.afterCheck != nil {
		w.afterCheck(checkResult{triggers: triggers, changed: differs})
	}
}

// relevant reports whether an event on name can concern the rule files.
func (w *Watcher) relevant(name string) bool {
	if _, ok := w.dirs[name]; ok {
		return true // a watched directory itself was removed or moved
	}
	d, ok := w.dirs[filepath.Dir(name)]
	if !ok {
		return false // a directory no longer watched
	}
	base := filepath.Base(name)
	return d.tree || d.names[base] || strings.HasPrefix(base, ".")
}

// sync adds a watch on every directory the paths need that is not watched
// yet (directories created or moved in since the last check) and drops the
// watches no longer needed. It returns the errors of required watches.
func (w *Watcher) sync() error {
	want := plan(w.paths)
	have := map[string]bool{}
	for _, d := range w.fsw.WatchList() {
		have[d] = true
	}
	var errs []error
	for _, dir := range slices.Sorted(maps.Keys(want)) {
		if have[dir] {
			continue
		}
		err := w.fsw.Add(dir)
		switch {
		case err == nil:
		case errors.Is(err, fs.ErrNotExist):
			// Gone since plan looked: its parent's event brings a new check.
			w.log.Debug("rules watch: directory vanished", "dir", dir)
		case want[dir].required:
			errs = append(errs, fmt.Errorf("watch %s: %w", dir, err))
		default:
			w.log.Warn("rules watch: cannot watch a directory", "dir", dir, "err", err)
		}
	}
	for dir := range have {
		if want[dir] == nil {
			_ = w.fsw.Remove(dir) // fails only when already gone
		}
	}
	w.dirs = want
	return errors.Join(errs...)
}

// plan lists the directories to watch for the paths: every directory of a
// rules tree (following symbolic links, skipping hidden names as the loader
// does), the directory holding each path (to see it replaced or recreated),
// and, for every symbolic link on the way to a rule file or directory, the
// directory holding the link and the one holding its target.
func plan(paths []string) map[string]*dirWatch {
	p := planner{dirs: map[string]*dirWatch{}, visited: map[string]bool{}}
	for _, root := range paths {
		st, err := os.Stat(root)
		isDir := err == nil && st.IsDir()
		p.links(root, err == nil && !isDir)
		if isDir {
			p.tree(root, true)
		}
	}
	return p.dirs
}

type planner struct {
	dirs    map[string]*dirWatch
	visited map[string]bool
}

// want adds a directory to watch, for every entry (tree) or for name.
func (p *planner) want(dir, name string, tree, required bool) {
	d := p.dirs[dir]
	if d == nil {
		d = &dirWatch{names: map[string]bool{}}
		p.dirs[dir] = d
	}
	d.tree = d.tree || tree
	d.required = d.required || required
	if name != "" {
		d.names[name] = true
	}
}

// links watches the entry of path in its directory and, while the entry is
// a symbolic link, the entry of each link target in turn: replacing any link
// on the way (a ConfigMap's ..data swap) or the final file is then seen.
func (p *planner) links(path string, required bool) {
	for range maxSymlinkHops {
		dir, err := filepath.EvalSymlinks(filepath.Dir(path))
		if err != nil {
			return
		}
		name := filepath.Base(path)
		p.want(dir, name, false, required)
		required = false
		link := filepath.Join(dir, name)
		fi, err := os.Lstat(link)
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			return
		}
		target, err := os.Readlink(link)
		if err != nil {
			return
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(dir, target)
		}
		path = target
	}
}

// tree watches dir and, recursively, its subdirectories.
func (p *planner) tree(dir string, required bool) {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil || p.visited[real] {
		return
	}
	p.visited[real] = true
	p.want(real, "", true, required)
	entries, err := os.ReadDir(real)
	if err != nil {
		return
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		path := filepath.Join(real, name)
		switch {
		case e.Type()&fs.ModeSymlink != 0:
			st, err := os.Stat(path)
			if err != nil {
				continue // dangling
			}
			if st.IsDir() {
				p.links(path, false)
				p.tree(path, false)
			} else if rules.IsRuleFile(name) {
				p.links(path, false)
			}
		case e.IsDir():
			p.tree(path, false)
		}
	}
}

// snapshot is the state of the rule files at one check.
type snapshot struct {
	files map[string]fileState // by path as listed by rules.Files
	err   string               // the rule files could not be listed
}

type fileState struct {
	sum [sha256.Size]byte
	err string
}

// scan reads every rule file under the paths.
func (w *Watcher) scan() snapshot {
	files, err := rules.Files(w.paths...)
	if err != nil {
		return snapshot{err: err.Error()}
	}
	s := snapshot{files: make(map[string]fileState, len(files))}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			s.files[f] = fileState{err: err.Error()}
			continue
		}
		s.files[f] = fileState{sum: sha256.Sum256(b)}
	}
	return s
}

func (s snapshot) equal(o snapshot) bool {
	return s.err == o.err && maps.Equal(s.files, o.files)
}
