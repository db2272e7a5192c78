package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// secretsKeyEnv holds the key that seals the webhook secrets in the
// database (64 hex characters). Every instance sharing a database needs the
// same key: set it for all of them, or copy the data dir's secrets.key.
const secretsKeyEnv = "SLUICE_SECRETS_KEY"

// secretsKey returns the key that seals stored secrets: $SLUICE_SECRETS_KEY,
// or DATA_DIR/secrets.key, created (0600, 32 random bytes in hex) when
// absent. The key itself never appears in logs or errors.
func secretsKey(dataDir string) ([]byte, error) {
	if v, ok := os.LookupEnv(secretsKeyEnv); ok {
		k, err := hex.DecodeString(strings.TrimSpace(v))
		if err != nil || len(k) != 32 {
			return nil, fmt.Errorf("$%s must be 64 hex characters (32 bytes)", secretsKeyEnv)
		}
		return k, nil
	}
	path := filepath.Join(dataDir, "secrets.key")
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		k := make([]byte, 32)
		if _, err := rand.Read(k); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return nil, fmt.Errorf("create %s: %w", path, err)
		}
		_, werr := f.WriteString(hex.EncodeToString(k) + "\n")
		if cerr := f.Close(); werr != nil || cerr != nil {
			return nil, fmt.Errorf("write %s: %w", path, errors.Join(werr, cerr))
		}
		return k, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	k, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(k) != 32 {
		return nil, fmt.Errorf("%s must hold 64 hex characters (32 bytes)", path)
	}
	return k, nil
}
