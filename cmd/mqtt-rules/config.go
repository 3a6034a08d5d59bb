package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/mqtt-rules/mqtt-rules/internal/yamlnode"
	"github.com/mqtt-rules/mqtt-rules/rules"
)

// applyConfig reads a config file (docs/operations.md, Config file: the
// keys are the flag names in snake_case, `rules` is a list, ${ENV} is
// expanded) and sets every flag the command line did not set: flags win.
// Errors name the file and line.
func applyConfig(fs *flag.FlagSet, path string) error {
	src, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config %s: %w", path, errors.Unwrap(err))
	}
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(src)).Decode(&doc); err != nil {
		line, col, msg := yamlnode.SyntaxError(src, err)
		return fmt.Errorf("config %s", yamlnode.FormatError(path, line, col, "", "", msg))
	}
	if len(doc.Content) == 0 {
		return nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("config %s:%d:%d: the config is a mapping of flag names to values", path, root.Line, root.Column)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []error
	at := func(n *yaml.Node, format string, args ...any) {
		errs = append(errs, fmt.Errorf("config %s:%d:%d: %s", path, n.Line, n.Column, fmt.Sprintf(format, args...)))
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
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
	return errors.Join(errs...)
}
