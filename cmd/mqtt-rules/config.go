package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mqtt-rules/mqtt-rules/internal/app"
	"github.com/mqtt-rules/mqtt-rules/internal/yamlnode"
	"github.com/mqtt-rules/mqtt-rules/rules"
)

// applyConfig reads a config file (docs/operations.md, Config file: the
// keys are the flag names in snake_case, `rules` is a list, ${ENV} is
// expanded) and sets every flag the command line did not set: flags win.
// Errors name the file and line. The key brokers: (docs/brokers.md) maps
// names to the connection keys of the other brokers; they are returned.
func applyConfig(fs *flag.FlagSet, path string) ([]app.BrokerConfig, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, errors.Unwrap(err))
	}
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(src)).Decode(&doc); err != nil {
		line, col, msg := yamlnode.SyntaxError(src, err)
		return nil, fmt.Errorf("config %s", yamlnode.FormatError(path, line, col, "", "", msg))
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("config %s:%d:%d: the config is a mapping of flag names to values", path, root.Line, root.Column)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []error
	at := func(n *yaml.Node, format string, args ...any) {
		errs = append(errs, fmt.Errorf("config %s:%d:%d: %s", path, n.Line, n.Column, fmt.Sprintf(format, args...)))
	}
	var brokers []app.BrokerConfig
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Value == "brokers" {
			brokers = readBrokers(v, at)
			continue
		}
		name := strings.ReplaceAll(k.Value, "_", "-")
		f := fs.Lookup(name)
		if f == nil || name == "config" || strings.Contains(k.Value, "-") {
			at(k, "unknown key %q (keys are the flags of `mqtt-rules run` in snake_case, like client_id)", k.Value)
			continue
		}
		if set[name] {
			continue // the command line wins
		}
		var values []*yaml.Node
		switch {
		case v.Kind == yaml.SequenceNode && name == "rules":
			values = v.Content
		case v.Kind == yaml.ScalarNode && v.Tag != "!!null":
			values = []*yaml.Node{v}
		default:
			at(v, "%s: want a single value%s", k.Value, map[bool]string{true: " or a list", false: ""}[name == "rules"])
			continue
		}
		for _, vn := range values {
			if vn.Kind != yaml.ScalarNode {
				at(vn, "%s: want a plain value", k.Value)
				continue
			}
			val, err := rules.ExpandEnv(vn.Value, nil)
			if err != nil {
				at(vn, "%s: %v", k.Value, err)
				continue
			}
			if err := fs.Set(name, val); err != nil {
				at(vn, "%s: %q: %v", k.Value, val, err)
			}
		}
	}
	return brokers, errors.Join(errs...)
}

// brokerKeys are the keys of an entry of brokers:, the connection flags
// of `mqtt-rules run` in snake_case.
var brokerKeys = []string{"broker", "client_id", "username", "password", "ca_file", "cert_file", "key_file", "protocol", "session_expiry", "share_group"}

// readBrokers reads brokers: — a mapping of names to mappings of
// brokerKeys, ${ENV} expanded — reporting every problem through at.
func readBrokers(n *yaml.Node, at func(*yaml.Node, string, ...any)) []app.BrokerConfig {
	if n.Kind != yaml.MappingNode {
		at(n, "brokers: want a mapping of broker names to their broker, client_id, username, … (docs/brokers.md)")
		return nil
	}
	var out []app.BrokerConfig
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		name := k.Value
		if err := app.CheckBrokerName(name); err != nil {
			at(k, "brokers: %v", err)
			continue
		}
		if seen[name] {
			at(k, "brokers: %q is given twice", name)
			continue
		}
		seen[name] = true
		if v.Kind != yaml.MappingNode {
			at(v, "brokers.%s: want a mapping of %s", name, strings.Join(brokerKeys, ", "))
			continue
		}
		b := app.BrokerConfig{Name: name}
		fields := map[string]*string{
			"broker": &b.URL, "client_id": &b.ClientID, "username": &b.Username, "password": &b.Password,
			"ca_file": &b.CAFile, "cert_file": &b.CertFile, "key_file": &b.KeyFile, "protocol": &b.Protocol, "share_group": &b.ShareGroup,
		}
		var expiry string
		fields["session_expiry"] = &expiry
		given := map[string]bool{}
		for j := 0; j+1 < len(v.Content); j += 2 {
			fk, fv := v.Content[j], v.Content[j+1]
			dst := fields[fk.Value]
			if dst == nil {
				at(fk, "brokers.%s: unknown key %q%s", name, fk.Value, keyHint(fk.Value))
				continue
			}
			if given[fk.Value] {
				at(fk, "brokers.%s: %s is given twice", name, fk.Value)
				continue
			}
			given[fk.Value] = true
			if fv.Kind != yaml.ScalarNode || fv.Tag == "!!null" {
				at(fv, "brokers.%s.%s: want a plain value", name, fk.Value)
				continue
			}
			val, err := rules.ExpandEnv(fv.Value, nil)
			if err != nil {
				at(fv, "brokers.%s.%s: %v", name, fk.Value, err)
				continue
			}
			switch fk.Value {
			case "protocol":
				if _, err := parseProtocol(val); err != nil {
					at(fv, "brokers.%s.protocol: %v", name, err)
					continue
				}
			case "session_expiry":
				d, err := time.ParseDuration(val)
				if err != nil || d < 0 {
					at(fv, "brokers.%s.session_expiry: %q: want a duration such as 24h (0: never expires)", name, val)
					continue
				}
				b.SessionExpiry = d
			}
			*dst = val
		}
		if b.URL == "" {
			at(k, "brokers.%s: broker (its URL, e.g. tcp://cloud.example:1883) missing", name)
			continue
		}
		out = append(out, b)
	}
	return out
}

// keyHint suggests the broker key meant by an unknown one.
func keyHint(key string) string {
	if s := yamlnode.Suggest(key, brokerKeys); s != "" {
		return s
	}
	if key == "url" || key == "host" {
		return ` (did you mean "broker"? it is the URL)`
	}
	return " (keys: " + strings.Join(brokerKeys, ", ") + ")"
}
