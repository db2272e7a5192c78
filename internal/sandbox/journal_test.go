package sandbox

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// writeJournal writes a journal holding the given payloads as block records
// and returns its path and the size after each record.
func writeJournal(t *testing.T, payloads ...string) (string, []int64) {
	t.Helper()
	path := filepath.Join(t.TempDir(), journalFile)
	j, err := openJournal(path, 0)
	must(t, err)
	var sizes []int64
	for _, p := range payloads {
		must(t, j.append(recordBlock, []byte(p)))
		sizes = append(sizes, j.size)
	}
	must(t, j.close())
	return path, sizes
}

func readAll(t *testing.T, path string) ([]string, int64, error) {
	t.Helper()
	var got []string
	end, _, err := scanJournal(path, func(r record) error {
		got = append(got, string(r.payload))
		return nil
	})
	return got, end, err
}

func TestJournalRoundTrip(t *testing.T) {
	t.Parallel()
	path, sizes := writeJournal(t, "one", "two", "three")
	got, end, err := readAll(t, path)
	must(t, err)
	if diff := cmp.Diff([]string{"one", "two", "three"}, got); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
	if end != sizes[2] {
		t.Errorf("end = %d, want %d", end, sizes[2])
	}
}

// TestJournalTail checks which damage at the end is taken for a torn write
// (cut, earlier records kept) and which for corruption (refused).
func TestJournalTail(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		damage  func(b []byte, sizes []int64) []byte
		want    []string
		corrupt bool
	}{
		{"half a header", func(b []byte, s []int64) []byte { return append(b, recordBlock, 0, 0) }, []string{"one", "two"}, false},
		{"short payload", func(b []byte, s []int64) []byte {
			return append(b, recordBlock, 0, 0, 0, 50, 1, 2, 3, 4, 'x')
		}, []string{"one", "two"}, false},
		{"zeros", func(b []byte, s []int64) []byte { return append(b, make([]byte, 4096)...) }, []string{"one", "two"}, false},
		{"last record's checksum", func(b []byte, s []int64) []byte { b[len(b)-1] ^= 1; return b }, []string{"one"}, false},
		{"first record's checksum", func(b []byte, s []int64) []byte { b[s[0]-1] ^= 1; return b }, nil, true},
		{"garbage after the records", func(b []byte, s []int64) []byte { return append(b, bytes.Repeat([]byte{0xff}, 20)...) }, nil, true},
		{"wrong magic", func(b []byte, s []int64) []byte { b[0] = 'X'; return b }, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path, sizes := writeJournal(t, "one", "two")
			b, err := os.ReadFile(path)
			must(t, err)
			must(t, os.WriteFile(path, tt.damage(b, sizes), 0o600))
			got, end, err := readAll(t, path)
			if tt.corrupt {
				if !errors.Is(err, errCorrupt) {
					t.Fatalf("err = %v, want errCorrupt", err)
				}
				return
			}
			must(t, err)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("records (-want +got):\n%s", diff)
			}
			// Reopening cuts the tail and appends after the last good record.
			j, err := openJournal(path, end)
			must(t, err)
			must(t, j.append(recordBlock, []byte("next")))
			must(t, j.close())
			got, _, err = readAll(t, path)
			must(t, err)
			if diff := cmp.Diff(append(tt.want, "next"), got); diff != "" {
				t.Errorf("after reopen (-want +got):\n%s", diff)
			}
		})
	}
}
