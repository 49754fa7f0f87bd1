package config

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"github.com/BurntSushi/toml"
)

// SaveProfile applies update to the profile name of the config file at
// path (creating the file or the profile when missing) and writes the file
// back through a temporary file. Comments in the file are not kept.
func SaveProfile(path, name string, update func(*Profile)) error {
	if path == "" || name == "" {
		return fmt.Errorf("no config file or profile to save to")
	}
	var file File
	if _, err := toml.DecodeFile(path, &file); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	if file.Profiles == nil {
		file.Profiles = map[string]Profile{}
	}
	p := file.Profiles[name]
	update(&p)
	file.Profiles[name] = p
	var buf bytes.Buffer
	buf.WriteString("# socks config (docs: README \"Configuration\"); socks deploy updates the URLs.\n")
	if err := toml.NewEncoder(&buf).Encode(file); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".config-*.toml")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(buf.Bytes()); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}
