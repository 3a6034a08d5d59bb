// Command mqtt-rules runs YAML rules against MQTT messages: it connects to a
// broker (or starts an embedded one), loads rule files, and for every message
// runs the rules whose topic filter matches and whose condition holds.
//
// Usage:
//
//	mqtt-rules run [--rules PATH]... [--broker URL] [flags]
//	mqtt-rules validate PATH...
//	mqtt-rules test PATH... [--message 'TOPIC=PAYLOAD']...
//	mqtt-rules record --broker URL --topic FILTER... [--out FILE]
//	mqtt-rules replay FILE --rules PATH [--against PATH]
//	mqtt-rules version
//	mqtt-rules healthcheck [URL]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
)

// Exit codes, the same for every command (README.md, A rule;
// docs/testing.md, 3. Run the tests).
const (
	exitOK      = 0
	exitInvalid = 1 // invalid rules, failed tests, or a run that could not start
	exitUsage   = 2
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = ""

func main() {
	if os.Getenv("GOGC") == "" {
		// Collect at 50 % heap growth instead of 100 %: the engine's live
		// heap is small and its allocation rate low, so this costs little
		// CPU and keeps resident memory near the live heap (BENCHMARKS.md).
		debug.SetGCPercent(50)
	}
	if os.Getenv("GOMAXPROCS") == "" {
		// The message path is one goroutine (the subscriber's reader runs
		// the engine and writes the publishes); a second P mostly looks
		// for work to steal. With one, the relay spends 15-30 % less CPU
		// per message (BENCHMARKS.md); webhooks and HTTP are I/O-bound.
		runtime.GOMAXPROCS(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(cli(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `mqtt-rules: a rules engine for MQTT

Usage:
  mqtt-rules run [--rules PATH]... [--broker URL] [flags]   run the engine
  mqtt-rules validate PATH...                               check rule files
  mqtt-rules test PATH...                                   run the rule tests (*_test.yaml)
  mqtt-rules test PATH... --message 'TOPIC=PAYLOAD'         dry-run messages: what would fire, and why
  mqtt-rules record --broker URL --topic FILTER [--out F]   capture messages as JSON lines
  mqtt-rules replay FILE --rules PATH [--against PATH]      run a capture through rules, or diff two sets
  mqtt-rules version                                        print the version
  mqtt-rules healthcheck [URL]                              exit 0 if URL (default: local /healthz) answers 200

Run "mqtt-rules COMMAND -h" for a command's flags.
`

// cli runs one command and returns the process exit code.
func cli(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "run":
		return runCmd(ctx, args, stdout, stderr)
	case "validate":
		return validateCmd(args, stdout, stderr)
	case "test":
		return testCmd(args, stdout, stderr)
	case "record":
		return recordCmd(ctx, args, stdout, stderr)
	case "replay":
		return replayCmd(args, stdout, stderr)
	case "healthcheck":
		return healthcheckCmd(ctx, args, stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintf(stdout, "mqtt-rules %s (%s %s/%s)\n", versionString(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return exitOK
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "mqtt-rules: unknown command %q\n\n%s", cmd, usage)
	return exitUsage
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// parseArgs parses flags that may come before or after the positional
// arguments, returning the positional ones. A "--" ends flags.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if rest[0] == "--" {
			return append(pos, rest[1:]...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// newFlagSet returns a flag set that reports errors to stderr and exits
// through the caller (ContinueOnError).
func newFlagSet(name string, stderr io.Writer, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: mqtt-rules %s\n\nFlags:\n", synopsis)
		printFlags(stderr, fs)
	}
	return fs
}

// printFlags lists a command's flags as the docs write them, --name, with
// their argument, usage and default.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		arg, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if arg != "" {
			line += " " + arg
		}
		fmt.Fprintln(w, line)
		if def := f.DefValue; def != "" && def != "false" && def != "0" && def != "0s" && def != "[]" {
			if g, ok := f.Value.(flag.Getter); ok {
				if _, isString := g.Get().(string); isString {
					def = strconv.Quote(def)
				}
			}
			usage += " (default " + def + ")"
		}
		fmt.Fprintf(w, "        %s\n", strings.ReplaceAll(usage, "\n", "\n        "))
	})
}

// usageCode maps a flag parse error to an exit code: -h is not an error.
func usageCode(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	return exitUsage
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }
