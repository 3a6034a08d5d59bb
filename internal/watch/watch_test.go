package watch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
)

const (
	// testDebounce is the quiet period of most tests: their changes to rule
	// files are atomic (put) or pass only through states equal to the one
	// before.
	testDebounce = 20 * time.Millisecond
	// burstDebounce is for changes whose intermediate states differ (a file
	// truncated by os.WriteFile, missing or half written), made in quick:
	// their steps must come within the quiet period to make one call, and
	// on a loaded machine two file writes in a row have been seen 67ms
	// apart.
	burstDebounce = DefaultDebounce
	waitLimit     = 10 * time.Second
)

// harness runs a Watcher over real files and records what it does.
type harness struct {
	t       *testing.T
	w       *Watcher
	pokeDir string // a watched directory where hidden files may be written
	calls   atomic.Int64

	mu     sync.Mutex
	checks []checkResult
	notify chan struct{} // signalled after every check
	pokes  int
}

// start watches paths and runs the Watcher until the test ends. pokeDir is a
// directory whose events the Watcher sees (a rules directory, or the
// directory holding a rules file).
func start(t *testing.T, pokeDir string, paths ...string) *harness {
	t.Helper()
	return startWith(t, testDebounce, pokeDir, paths...)
}

func startWith(t *testing.T, debounce time.Duration, pokeDir string, paths ...string) *harness {
	t.Helper()
	w, err := New(paths, Options{Debounce: debounce, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return run(t, w, pokeDir)
}

// startFor starts a harness for changes that are bursts (see quick) or not.
func startFor(t *testing.T, burst bool, pokeDir string, paths ...string) *harness {
	t.Helper()
	if burst {
		return startWith(t, burstDebounce, pokeDir, paths...)
	}
	return start(t, pokeDir, paths...)
}

func run(t *testing.T, w *Watcher, pokeDir string) *harness {
	t.Helper()
	h := &harness{t: t, w: w, pokeDir: pokeDir, notify: make(chan struct{}, 1)}
	w.afterCheck = func(c checkResult) {
		h.mu.Lock()
		h.checks = append(h.checks, c)
		h.mu.Unlock()
		select {
		case h.notify <- struct{}{}:
		default:
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, func() { h.calls.Add(1) }) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v, want nil", err)
			}
		case <-time.After(waitLimit):
			t.Errorf("Run did not return after its context ended")
		}
	})
	return h
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// waitFor waits until cond holds, re-evaluating it after every check.
func (h *harness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.After(waitLimit)
	for !cond() {
		select {
		case <-h.notify:
		case <-deadline:
			h.t.Fatalf("timed out waiting for %s (changed calls: %d)", what, h.calls.Load())
		}
	}
}

// expect waits until changed has been called want times in all, then proves
// no further call is coming: it writes a hidden file (which is never a rule
// file), waits for the check that event causes — by then every earlier event
// has been seen — and asserts the count again.
func (h *harness) expect(want int64) {
	h.t.Helper()
	h.waitFor(fmt.Sprintf("%d changed calls", want), func() bool {
		got := h.calls.Load()
		if got > want {
			h.t.Fatalf("changed calls: got %d, want %d", got, want)
		}
		return got == want
	})
	poke := h.poke()
	h.waitFor("the check after "+poke, func() bool { return h.sawTrigger(poke) })
	if got := h.calls.Load(); got != want {
		h.t.Fatalf("changed calls after a further check: got %d, want %d", got, want)
	}
}

// poke writes a new hidden file in pokeDir and returns the name the
// Watcher's events give it.
func (h *harness) poke() string {
	h.t.Helper()
	h.pokes++
	name := ".poke-" + strconv.Itoa(h.pokes)
	writeFile(h.t, filepath.Join(h.pokeDir, name), "poke")
	return filepath.Join(realPath(h.t, h.pokeDir), name)
}

// quick runs op, a change whose steps pass through rule file states unlike
// its end (a file truncated, missing, half of fifty written), and skips the
// rest of the test when the machine ran op so slowly that a pause between
// its steps could have been taken for the end of the activity: one call is
// then no longer what the Watcher promises.
func (h *harness) quick(op func()) {
	h.t.Helper()
	begin := time.Now()
	op()
	if took := time.Since(begin); took >= h.w.debounce/2 {
		h.t.Skipf("the machine is too loaded: a burst took %v, against a quiet period of %v", took, h.w.debounce)
	}
}

// change runs op, through quick when it is a burst.
func (h *harness) change(burst bool, op func()) {
	h.t.Helper()
	if burst {
		h.quick(op)
	} else {
		op()
	}
}

// sawTrigger reports whether some check so far was triggered by an event on
// name (or an error whose text contains name).
func (h *harness) sawTrigger(name string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range h.checks {
		for _, tr := range c.triggers {
			if tr == name || strings.HasPrefix(tr, "error: ") && strings.Contains(tr, name) {
				return true
			}
		}
	}
	return false
}

// put replaces a file at once, by renaming a hidden file over it.
func put(t *testing.T, path, content string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".new")
	writeFile(t, tmp, content)
	rename(t, tmp, path)
}

// writeFile writes a file in place, as os.WriteFile does: truncated (or
// created empty), then written; a check between the two sees the file empty.
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mkdir(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(path, 0o755); err != nil {
		t.Fatal(err)
	}
}

func rename(t *testing.T, from, to string) {
	t.Helper()
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
}

func remove(t *testing.T, path string) {
	t.Helper()
	if err := os.RemoveAll(path); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func realPath(t *testing.T, path string) string {
	t.Helper()
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		t.Fatal(err)
	}
	return real
}

const rule1 = "rules:\n  - name: a\n    topic: a\n    actions: [log: a]\n"
const rule2 = "rules:\n  - name: b\n    topic: b\n    actions: [log: b]\n"

// rulesDir makes <tmp>/rules holding a.yaml; its parent is watched too.
func rulesDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "rules")
	mkdir(t, dir)
	writeFile(t, filepath.Join(dir, "a.yaml"), rule1)
	return dir
}

func TestNewRuleFile(t *testing.T) {
	t.Parallel()
	dir := rulesDir(t)
	h := startWith(t, burstDebounce, dir, dir)
	h.quick(func() { writeFile(t, filepath.Join(dir, "b.yaml"), rule2) })
	h.expect(1)
	h.quick(func() { writeFile(t, filepath.Join(dir, "c.yml"), rule2) })
	h.expect(2)
}

func TestWriteInPlace(t *testing.T) {
	t.Parallel()
	dir := rulesDir(t)
	h := startWith(t, burstDebounce, dir, dir)
	h.quick(func() { writeFile(t, filepath.Join(dir, "a.yaml"), rule2) })
	h.expect(1)
	h.quick(func() { writeFile(t, filepath.Join(dir, "a.yaml"), rule1) })
	h.expect(2)
}

// Activity that leaves the rule files as they were is checked but gives no
// call.
func TestNoChange(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		op    func(t *testing.T, dir string)
		burst bool // passes through a different state
	}{
		{"same bytes written", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, "a.yaml"), rule1)
		}, true},
		{"touch", func(t *testing.T, dir string) {
			now := time.Now()
			if err := os.Chtimes(filepath.Join(dir, "a.yaml"), now, now); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"chmod", func(t *testing.T, dir string) {
			if err := os.Chmod(filepath.Join(dir, "a.yaml"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"unchanged buffer saved by rename", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, ".a.yaml.tmp"), rule1)
			rename(t, filepath.Join(dir, ".a.yaml.tmp"), filepath.Join(dir, "a.yaml"))
		}, false},
		{"written and changed back", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, "a.yaml"), rule2)
			writeFile(t, filepath.Join(dir, "a.yaml"), rule1)
		}, true},
		{"rule test file", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, "a_test.yaml"), "tests: []\n")
		}, false},
		{"not yaml", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, "README.md"), "# rules\n")
		}, false},
		{"hidden yaml", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, ".a.yaml"), rule2)
		}, false},
		{"empty directory", func(t *testing.T, dir string) {
			mkdir(t, filepath.Join(dir, "empty"))
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := rulesDir(t)
			h := startFor(t, tt.burst, dir, dir)
			h.change(tt.burst, func() { tt.op(t, dir) })
			h.expect(0)
			h.mu.Lock()
			n := len(h.checks)
			h.mu.Unlock()
			if n == 0 {
				t.Fatal("no check was made")
			}
		})
	}
}

// Editors and tools that save by writing a new file and renaming it over the
// old name give one call per save.
func TestEditorSave(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		save  func(t *testing.T, path, content string)
		burst bool // the file is missing or half written on the way
	}{
		{"VS Code: hidden temp renamed over", func(t *testing.T, path, content string) {
			tmp := filepath.Join(filepath.Dir(path), ".a.yaml.tmp-1234")
			writeFile(t, tmp, content)
			rename(t, tmp, path)
		}, false},
		{"sed -i: new inode renamed over", func(t *testing.T, path, content string) {
			tmp := filepath.Join(filepath.Dir(path), "sedXk3q9Z")
			writeFile(t, tmp, content)
			rename(t, tmp, path)
		}, false},
		{"vim: backup renamed away, new file written, backup removed", func(t *testing.T, path, content string) {
			dir := filepath.Dir(path)
			writeFile(t, filepath.Join(dir, "4913"), "")
			remove(t, filepath.Join(dir, "4913"))
			rename(t, path, path+"~")
			writeFile(t, path, content)
			remove(t, path+"~")
		}, true},
		{"truncate then write", func(t *testing.T, path, content string) {
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			for line := range strings.Lines(content) {
				if _, err := f.WriteString(line); err != nil {
					t.Fatal(err)
				}
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := rulesDir(t)
			path := filepath.Join(dir, "a.yaml")
			h := startFor(t, tt.burst, dir, dir)
			h.change(tt.burst, func() { tt.save(t, path, rule2) })
			h.expect(1)
			h.change(tt.burst, func() { tt.save(t, path, rule1) })
			h.expect(2)
			h.change(tt.burst, func() { tt.save(t, path, rule1) })
			h.expect(2)
		})
	}
}

func TestDelete(t *testing.T) {
	t.Parallel()
	dir := rulesDir(t)
	writeFile(t, filepath.Join(dir, "b.yaml"), rule2)
	h := start(t, dir, dir)
	remove(t, filepath.Join(dir, "b.yaml"))
	h.expect(1)
	remove(t, filepath.Join(dir, "a.yaml")) // the last one
	h.expect(2)
}

func TestRenameAwayAndBack(t *testing.T) {
	t.Parallel()
	for _, away := range []string{"a.yaml.disabled", ".a.yaml", "a_test.yaml", "b.yaml"} {
		t.Run(away, func(t *testing.T) {
			t.Parallel()
			dir := rulesDir(t)
			h := start(t, dir, dir)
			rename(t, filepath.Join(dir, "a.yaml"), filepath.Join(dir, away))
			h.expect(1)
			rename(t, filepath.Join(dir, away), filepath.Join(dir, "a.yaml"))
			h.expect(2)
		})
	}
}

// Directories created after New are watched, however deep and however
// quickly their files follow.
func TestNewSubdirectory(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		sub    string
		gapped bool // the directory is checked empty before its file comes
	}{
		{"mkdir and file at once", "sub", false},
		{"mkdir, later a file", "sub", true},
		{"MkdirAll nested and file at once", "a/b/c", false},
		{"MkdirAll nested, later a file", "a/b/c", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := rulesDir(t)
			sub := filepath.Join(dir, filepath.FromSlash(tt.sub))
			h := start(t, dir, dir)
			mkdir(t, sub)
			if tt.gapped {
				h.expect(0)
			}
			put(t, filepath.Join(sub, "r.yaml"), rule2)
			h.expect(1)
			// The new directory is watched: an in-place write is seen.
			put(t, filepath.Join(sub, "r.yaml"), rule1)
			h.expect(2)
			put(t, filepath.Join(sub, "s.yaml"), rule1)
			h.expect(3)
		})
	}
}

func TestDirectoryRemovedAndRecreated(t *testing.T) {
	t.Parallel()
	dir := rulesDir(t)
	sub := filepath.Join(dir, "sub")
	mkdir(t, sub)
	writeFile(t, filepath.Join(sub, "r.yaml"), rule1)
	h := start(t, dir, dir)
	remove(t, sub)
	h.expect(1)
	mkdir(t, sub)
	h.expect(1) // empty, as after the removal
	put(t, filepath.Join(sub, "r.yaml"), rule1)
	h.expect(2)
	put(t, filepath.Join(sub, "r.yaml"), rule2)
	h.expect(3)
}

// A rules path itself removed is a change (the reload reports the missing
// path); recreated, it is watched again.
func TestRulesPathRemovedAndRecreated(t *testing.T) {
	t.Parallel()
	dir := rulesDir(t)
	parent := filepath.Dir(dir)
	h := start(t, parent, dir)
	rename(t, dir, dir+".old") // removed at once, as mv does
	h.expect(1)
	remove(t, dir+".old")
	h.expect(1)
	mkdir(t, dir)
	h.expect(2)
	put(t, filepath.Join(dir, "a.yaml"), rule1)
	h.expect(3)
	put(t, filepath.Join(dir, "a.yaml"), rule2)
	h.expect(4)
}

// A rules path that is one file: its directory is watched, filtered to it.
func TestSingleFile(t *testing.T) {
	t.Parallel()
	dir := rulesDir(t)
	path := filepath.Join(dir, "a.yaml")
	other := filepath.Join(dir, "other.yaml")
	writeFile(t, other, rule2)
	h := startWith(t, burstDebounce, dir, path)

	writeFile(t, other, rule1)
	h.expect(0)
	if h.sawTrigger(other) {
		t.Error("an event on a sibling file triggered a check")
	}
	h.quick(func() { writeFile(t, path, rule2) })
	h.expect(1)
	tmp := filepath.Join(dir, "sedA1b2C3")
	writeFile(t, tmp, rule1)
	rename(t, tmp, path)
	h.expect(2)
	h.quick(func() { writeFile(t, path, rule2) }) // the new inode is seen
	h.expect(3)
	remove(t, path)
	h.expect(4)
	h.quick(func() { writeFile(t, path, rule2) })
	h.expect(5)
}

// configMap lays out a directory as the kubelet mounts a ConfigMap volume and
// returns a function that updates it exactly as the kubelet does.
func configMap(t *testing.T, mount string, data map[string]string) (update func(data map[string]string)) {
	t.Helper()
	stamp := 0
	current := ""
	write := func(data map[string]string) string {
		stamp++
		ts := fmt.Sprintf("..2026_11_25_10_%02d_00.%03d", stamp, 100+stamp)
		mkdir(t, filepath.Join(mount, ts))
		for name, content := range data {
			writeFile(t, filepath.Join(mount, ts, name), content)
		}
		return ts
	}
	mkdir(t, mount)
	current = write(data)
	symlink(t, current, filepath.Join(mount, "..data"))
	for name := range data {
		symlink(t, filepath.Join("..data", name), filepath.Join(mount, name))
	}
	return func(data map[string]string) {
		t.Helper()
		next := write(data)
		symlink(t, next, filepath.Join(mount, "..data_tmp"))
		rename(t, filepath.Join(mount, "..data_tmp"), filepath.Join(mount, "..data"))
		remove(t, filepath.Join(mount, current))
		current = next
	}
}

func TestConfigMapSwap(t *testing.T) {
	t.Parallel()
	for _, whole := range []bool{true, false} {
		name := "mount directory"
		if !whole {
			name = "one file of the mount"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			mount := filepath.Join(t.TempDir(), "config")
			update := configMap(t, mount, map[string]string{"rule.yaml": rule1, "more.yaml": rule1})
			path := mount
			if !whole {
				path = filepath.Join(mount, "rule.yaml")
			}
			h := start(t, mount, path)
			update(map[string]string{"rule.yaml": rule2, "more.yaml": rule1})
			h.expect(1)
			update(map[string]string{"rule.yaml": rule1, "more.yaml": rule1})
			h.expect(2)
			update(map[string]string{"rule.yaml": rule1, "more.yaml": rule1}) // same content
			h.expect(2)
			update(map[string]string{"rule.yaml": rule1, "more.yaml": rule2})
			if whole {
				h.expect(3)
			} else {
				h.expect(2) // another key of the ConfigMap
			}
		})
	}
}

// A symbolic link in a rules tree to a directory elsewhere: the target is
// watched, and re-targeting the link moves the watch.
func TestSymlinkedDirectoryElsewhere(t *testing.T) {
	t.Parallel()
	dir := rulesDir(t)
	elsewhere := filepath.Join(t.TempDir(), "shared")
	mkdir(t, elsewhere)
	writeFile(t, filepath.Join(elsewhere, "x.yaml"), rule1)
	symlink(t, elsewhere, filepath.Join(dir, "shared"))
	h := start(t, dir, dir)

	put(t, filepath.Join(elsewhere, "x.yaml"), rule2)
	h.expect(1)
	put(t, filepath.Join(elsewhere, "y.yaml"), rule1)
	h.expect(2)
	mkdir(t, filepath.Join(elsewhere, "sub"))
	h.expect(2)
	put(t, filepath.Join(elsewhere, "sub", "z.yaml"), rule1)
	h.expect(3)

	// Re-target the link atomically.
	other := filepath.Join(t.TempDir(), "shared2")
	mkdir(t, other)
	writeFile(t, filepath.Join(other, "w.yaml"), rule1)
	symlink(t, other, filepath.Join(dir, ".shared.new"))
	rename(t, filepath.Join(dir, ".shared.new"), filepath.Join(dir, "shared"))
	h.expect(4)
	put(t, filepath.Join(elsewhere, "x.yaml"), rule1) // no longer a rules directory
	h.expect(4)
	put(t, filepath.Join(other, "w.yaml"), rule2)
	h.expect(5)
}

// A chain of links, as in a deployment's "current" link to a release: the
// middle link is re-targeted where no rules path is.
func TestSymlinkChainRetargeted(t *testing.T) {
	t.Parallel()
	dir := rulesDir(t)
	app := filepath.Join(t.TempDir(), "app")
	mkdir(t, filepath.Join(app, "releases", "v1"))
	writeFile(t, filepath.Join(app, "releases", "v1", "x.yaml"), rule1)
	symlink(t, filepath.Join("releases", "v1"), filepath.Join(app, "current"))
	symlink(t, filepath.Join(app, "current"), filepath.Join(dir, "app"))
	h := start(t, dir, dir)

	mkdir(t, filepath.Join(app, "releases", "v2"))
	writeFile(t, filepath.Join(app, "releases", "v2", "x.yaml"), rule2)
	symlink(t, filepath.Join("releases", "v2"), filepath.Join(app, "current.tmp"))
	rename(t, filepath.Join(app, "current.tmp"), filepath.Join(app, "current"))
	h.expect(1)
	remove(t, filepath.Join(app, "releases", "v1"))
	h.expect(1)
	put(t, filepath.Join(app, "releases", "v2", "x.yaml"), rule1)
	h.expect(2)
}

// A rule file that is a symbolic link to a file elsewhere, edited in place
// and by rename at its target.
func TestSymlinkedFileElsewhere(t *testing.T) {
	t.Parallel()
	for _, single := range []bool{false, true} {
		t.Run(fmt.Sprintf("path is the link: %v", single), func(t *testing.T) {
			t.Parallel()
			dir := rulesDir(t)
			elsewhere := t.TempDir()
			target := filepath.Join(elsewhere, "x.yaml")
			writeFile(t, target, rule1)
			link := filepath.Join(dir, "x.yaml")
			symlink(t, target, link)
			path := dir
			if single {
				path = link
			}
			h := startWith(t, burstDebounce, dir, path)
			h.quick(func() { writeFile(t, target, rule2) })
			h.expect(1)
			writeFile(t, target+".tmp", rule1)
			rename(t, target+".tmp", target)
			h.expect(2)
			h.quick(func() { writeFile(t, target, rule2) })
			h.expect(3)
		})
	}
}

// Fifty files written at once give one call; so do fifty removals.
func TestBurst(t *testing.T) {
	t.Parallel()
	dir := rulesDir(t)
	h := startWith(t, burstDebounce, dir, dir)
	h.quick(func() {
		for i := range 50 {
			writeFile(t, filepath.Join(dir, fmt.Sprintf("r%02d.yaml", i)), rule2)
		}
	})
	h.expect(1)
	h.quick(func() {
		for i := range 50 {
			remove(t, filepath.Join(dir, fmt.Sprintf("r%02d.yaml", i)))
		}
	})
	h.expect(2)
}

func TestSeveralPaths(t *testing.T) {
	t.Parallel()
	dir1, dir2 := rulesDir(t), rulesDir(t)
	file := filepath.Join(t.TempDir(), "extra.yaml")
	writeFile(t, file, rule1)
	h := start(t, dir1, dir1, dir2, file)
	put(t, filepath.Join(dir2, "a.yaml"), rule2)
	h.expect(1)
	put(t, file, rule2)
	h.expect(2)
	put(t, filepath.Join(dir1, "a.yaml"), rule2)
	h.expect(3)
}

// Changes made between New and Run are measured against New's baseline.
func TestChangeBeforeRun(t *testing.T) {
	t.Parallel()
	dir := rulesDir(t)
	w, err := New([]string{dir}, Options{Debounce: testDebounce, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "a.yaml"), rule2)
	h := run(t, w, dir)
	h.expect(1)
}

// An overflowing event queue is logged and leads to a rescan that finds the
// change whose event was lost.
func TestEventQueueOverflow(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("/proc/sys/fs/inotify/max_queued_events")
	if err != nil {
		t.Skip("not inotify:", err)
	}
	limit, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || limit > 1<<16 {
		t.Skipf("max_queued_events %q: too many events to overflow quickly", b)
	}
	dir := rulesDir(t)
	w, err := New([]string{dir}, Options{Debounce: testDebounce, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	// Run is not reading yet, so the kernel queue fills: chmod two hidden
	// files in turn (identical consecutive events would be merged).
	noise := [2]string{filepath.Join(dir, ".n0"), filepath.Join(dir, ".n1")}
	for _, n := range noise {
		writeFile(t, n, "")
	}
	for i := range limit + 20000 {
		if err := os.Chmod(noise[i%2], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(dir, "a.yaml"), rule2) // its event is lost
	h := run(t, w, dir)
	h.expect(1)
	if !h.sawTrigger(fsnotify.ErrEventOverflow.Error()) {
		t.Error("no check was triggered by the overflow error")
	}
}

// Continuous activity postpones a check by at most maxDelay: with a quiet
// period that never comes (an hour), checks are still made.
func TestMaxDelay(t *testing.T) {
	t.Parallel()
	dir := rulesDir(t)
	w, err := New([]string{dir}, Options{Debounce: time.Hour, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	w.maxDelay = 2 * testDebounce
	h := run(t, w, dir)
	put(t, filepath.Join(dir, "a.yaml"), rule2)
	h.expect(1)
	put(t, filepath.Join(dir, "a.yaml"), rule2)
	h.expect(1)
}

func TestNewErrors(t *testing.T) {
	t.Parallel()
	dir := rulesDir(t)
	missing := filepath.Join(dir, "missing")
	_, err := New([]string{dir, missing}, Options{})
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("New with a missing path: got %v, want a not-exist error naming %s", err, missing)
	}
	if _, err := New(nil, Options{}); err == nil {
		t.Error("New without paths: got nil error")
	}
	if _, err := New([]string{dir}, Options{Debounce: -time.Second}); err == nil {
		t.Error("New with a negative debounce: got nil error")
	}
}

func TestRunLifecycle(t *testing.T) {
	t.Parallel()
	dir := rulesDir(t)
	w, err := New([]string{dir}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if w.debounce != DefaultDebounce {
		t.Errorf("debounce: got %s, want %s", w.debounce, DefaultDebounce)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := w.Run(ctx, func() { t.Error("changed called") }); err != nil {
		t.Errorf("Run after cancel: got %v, want nil", err)
	}
	if err := w.Run(context.Background(), func() {}); err == nil {
		t.Error("second Run: got nil error")
	}
	if err := w.Close(); err != nil {
		t.Errorf("Close after Run: %v", err)
	}

	w2, err := New([]string{dir}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w2.Close(); err != nil {
		t.Errorf("Close without Run: %v", err)
	}
}

// The watch plan covers what the loader reads and no more.
func TestPlan(t *testing.T) {
	t.Parallel()
	root := realPath(t, t.TempDir())
	dir := filepath.Join(root, "rules")
	mkdir(t, filepath.Join(dir, "sub", "deep"))
	mkdir(t, filepath.Join(dir, ".hidden"))
	elsewhere := filepath.Join(root, "elsewhere")
	mkdir(t, elsewhere)
	symlink(t, elsewhere, filepath.Join(dir, "link"))
	symlink(t, dir, filepath.Join(dir, "sub", "loop")) // a cycle
	got := plan([]string{dir})
	var trees, filtered []string
	for d, w := range got {
		rel, _ := filepath.Rel(root, d)
		if w.tree {
			trees = append(trees, rel)
		} else {
			filtered = append(filtered, rel)
		}
	}
	slices.Sort(trees)
	slices.Sort(filtered)
	wantTrees := []string{"elsewhere", "rules", filepath.Join("rules", "sub"), filepath.Join("rules", "sub", "deep")}
	if !slices.Equal(trees, wantTrees) {
		t.Errorf("tree watches: got %q, want %q", trees, wantTrees)
	}
	if !slices.Equal(filtered, []string{"."}) {
		t.Errorf("filtered watches: got %q, want the rules path's parent", filtered)
	}
}
