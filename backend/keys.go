package backend

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/socks-dev/socks/awsops"
	"github.com/socks-dev/socks/config"
	"github.com/socks-dev/socks/internal/atomicfile"
	"github.com/socks-dev/socks/internal/planted"
	"github.com/socks-dev/socks/internal/text"
	"github.com/socks-dev/socks/store"
)

// ReadManagementKeys reads the key pair of the local gateway from path (an
// AWS shared credentials file, profile config.ManagementProfile). ok is
// false when the file does not exist.
func ReadManagementKeys(path string) (creds aws.Credentials, ok bool, err error) {
	creds, _, ok, err = readManagementKeys(path)
	return creds, ok, err
}

// readManagementKeys is ReadManagementKeys that returns the file info of
// the file it read as well, for checkPrivate.
func readManagementKeys(path string) (creds aws.Credentials, fi fs.FileInfo, ok bool, err error) {
	data, fi, err := readKeyFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return aws.Credentials{}, nil, false, nil
	}
	if err != nil {
		if errors.Is(err, planted.ErrNotRegular) {
			return aws.Credentials{}, nil, false, err
		}
		return aws.Credentials{}, nil, false, fmt.Errorf("reading the gateway's key pair: %w", err)
	}
	// Written by hand, perhaps in Notepad.
	if data, err = text.UTF8File(data); err != nil {
		return aws.Credentials{}, nil, false, fmt.Errorf("reading the gateway's key pair: %s: %w", path, err)
	}
	inProfile := false
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "[") {
			inProfile = line == "["+config.ManagementProfile+"]"
			continue
		}
		k, v, found := strings.Cut(line, "=")
		if !inProfile || !found {
			continue
		}
		switch strings.TrimSpace(k) {
		case "aws_access_key_id":
			creds.AccessKeyID = strings.TrimSpace(v)
		case "aws_secret_access_key":
			creds.SecretAccessKey = strings.TrimSpace(v)
		}
	}
	if creds.AccessKeyID == "" || creds.SecretAccessKey == "" {
		return aws.Credentials{}, nil, false, fmt.Errorf("%s has no [%s] profile with aws_access_key_id and aws_secret_access_key: remove it and socks writes a new one", path, config.ManagementProfile)
	}
	creds.Source = path
	return creds, fi, true, nil
}

// maxKeyFile bounds what is read of a key file (a few hundred bytes).
const maxKeyFile = 64 << 10

// readKeyFile reads the key file at path, following a link (a --keys-file
// may be one: checkPrivate looks at the file it points at) but never
// waiting on a FIFO, which held `socks serve` and every `socks publish`
// for ever when one was planted in the state dir: anything but a regular
// file is refused with a *planted.Error that names it, and so is a link
// that points at nothing. fi is the file read, to check (checkPrivate)
// what was read rather than what the path names a moment later.
func readKeyFile(path string) (data []byte, fi fs.FileInfo, err error) {
	f, err := os.OpenFile(path, os.O_RDONLY|planted.NonBlock, 0)
	if err != nil {
		if perr := planted.Check(path); perr != nil {
			return nil, nil, perr
		}
		return nil, nil, err
	}
	defer f.Close()
	if fi, err = f.Stat(); err != nil {
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, planted.NotRegular(path, fi)
	}
	data, err = io.ReadAll(io.LimitReader(f, maxKeyFile))
	return data, fi, err
}

// EnsureManagementKeys returns the key pair in path, creating the file
// (mode 0600) with a fresh random pair when it is missing. An existing
// file must be the user's own and not readable by others (checkPrivate):
// the gateway trusts whoever knows the pair.
func EnsureManagementKeys(path string) (aws.Credentials, error) {
	if creds, fi, ok, err := readManagementKeys(path); err != nil || ok {
		if err == nil {
			err = checkPrivate(path, fi)
		}
		if err != nil {
			return aws.Credentials{}, err
		}
		return creds, nil
	}
	var id [10]byte
	var secret [30]byte
	_, _ = rand.Read(id[:]) // crypto/rand.Read never fails on supported platforms.
	_, _ = rand.Read(secret[:])
	creds := aws.Credentials{
		AccessKeyID:     "AKSOCKS" + base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(id[:]),
		SecretAccessKey: base64.RawURLEncoding.EncodeToString(secret[:]),
		Source:          path,
	}
	content := fmt.Sprintf("# The key pair of the local socks gateway: sign @connections calls with it.\n[%s]\naws_access_key_id = %s\naws_secret_access_key = %s\n",
		config.ManagementProfile, creds.AccessKeyID, creds.SecretAccessKey)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return aws.Credentials{}, fmt.Errorf("writing the gateway's key pair: %w", err)
	}
	// The pair is written whole to a file of its own, which is then
	// linked into place (atomicfile.Create): a link never replaces a
	// file, so of processes making it at once one links and the others
	// read what it wrote, and no one ever reads, or leaves behind on a
	// kill, a file the pair is not yet in (O_EXCL and a write did both).
	// Where the file system has no hard links (FAT, exFAT), the pair is
	// made in place with O_EXCL, as before links: a moment in which
	// another process reads the file empty, rather than no pair at all.
	err := keyFiles.Create(path, []byte(content), 0o600)
	if errors.Is(err, fs.ErrExist) {
		// Another process made it first: its pair is the one.
		creds, fi, ok, err := readManagementKeys(path)
		if err == nil && !ok {
			// Gone again since, or a link to nothing.
			err = fmt.Errorf("writing the gateway's key pair: %s came and went; try again", path)
		}
		if err == nil {
			err = checkPrivate(path, fi)
		}
		if err != nil {
			return aws.Credentials{}, err
		}
		return creds, nil
	}
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("writing the gateway's key pair: %w", err)
	}
	return creds, nil
}

// keyFiles writes the key pair's file; tests make its steps fail.
var keyFiles atomicfile.Writer

// SignedLocalPusher is the pusher for a local gateway that requires signed
// calls: the same SDK client as on AWS, signing with creds.
func SignedLocalPusher(endpoint string, concurrency int, creds aws.Credentials, opts ...awsops.ClientOption) store.Pusher {
	cfg := awsops.LocalConfig()
	cfg.Credentials = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return creds, nil })
	return awsops.NewPusher(awsops.NewManagementClient(cfg, endpoint, concurrency, opts...))
}
