package sandbox

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"

	"github.com/ethereum/go-ethereum/common"
)

// The journal is an append-only file of records, each
//
//	kind (1 byte) | payload length (4 bytes, big endian) | CRC-32C of kind and payload (4 bytes) | payload
//
// after an 8-byte magic. A block record holds a block's RLP; a head record
// holds the 32-byte hash of a block made the head by Fork. Every append is
// fsynced before the block is announced to the caller, so a crash can only
// leave a torn last record, which openJournal cuts away.
const (
	journalMagic     = "SLUICEJ1"
	recordHeaderSize = 9
	maxRecordSize    = 64 << 20 // far above a 60M-gas block's RLP
)

// Record kinds.
const (
	recordBlock byte = 1
	recordHead  byte = 2
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// errCorrupt marks a journal that cannot be read back, as opposed to an I/O
// failure.
var errCorrupt = errors.New("journal is corrupt")

// record is one journal entry.
type record struct {
	kind    byte
	payload []byte
}

// journal appends records to an open file.
type journal struct {
	f    *os.File
	size int64
}

// scanJournal reads every complete record of the file at path and calls fn
// for each. It returns the offset just past the last good record; when that
// is short of the file's size, the tail is a torn write that openJournal
// should cut. A damaged record that is not at the tail is errCorrupt.
func scanJournal(path string, fn func(record) error) (end, size int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, 0, err
	}
	size = st.Size()
	r := bufio.NewReaderSize(f, 1<<20)
	magic := make([]byte, len(journalMagic))
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != journalMagic {
		if size < int64(len(journalMagic)) && bytes.HasPrefix([]byte(journalMagic), magic[:size]) {
			return 0, size, nil // created but its magic never reached the disk
		}
		return 0, size, fmt.Errorf("%w: %s does not start with the journal magic", errCorrupt, path)
	}
	end = int64(len(journalMagic))
	for end < size {
		rec, n, err := readRecord(r, size-end)
		if err != nil {
			if errors.Is(err, errTorn) && tornTail(path, end) {
				return end, size, nil
			}
			return end, size, fmt.Errorf("%w: record at offset %d: %v", errCorrupt, end, err)
		}
		if err := fn(rec); err != nil {
			return end, size, err
		}
		end += n
	}
	return end, size, nil
}

// errTorn marks a record that is incomplete or fails its checksum.
var errTorn = errors.New("incomplete or damaged record")

// readRecord reads one record; remaining is the number of bytes left in the
// file from the record's start.
func readRecord(r *bufio.Reader, remaining int64) (record, int64, error) {
	var hdr [recordHeaderSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return record{}, 0, errTorn
	}
	kind, n, sum := hdr[0], binary.BigEndian.Uint32(hdr[1:5]), binary.BigEndian.Uint32(hdr[5:9])
	if (kind != recordBlock && kind != recordHead) || n > maxRecordSize {
		return record{}, 0, fmt.Errorf("%w: kind %d, length %d", errTorn, kind, n)
	}
	total := recordHeaderSize + int64(n)
	if total > remaining {
		return record{}, 0, errTorn
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return record{}, 0, errTorn
	}
	if checksum(kind, payload) != sum {
		return record{}, 0, fmt.Errorf("%w: checksum mismatch", errTorn)
	}
	return record{kind: kind, payload: payload}, total, nil
}

// tornTail reports whether a damaged record at off can be the result of a
// crash during its append: the tail is shorter than a header, or all zeros
// (space the file system allocated but never wrote), or a plausible header
// whose record reaches the end of the file. A damaged record followed by more
// data is corruption, never cut away.
func tornTail(path string, off int64) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	tail, err := io.ReadAll(io.NewSectionReader(f, off, maxRecordSize+recordHeaderSize+1))
	if err != nil || len(tail) > maxRecordSize+recordHeaderSize {
		return false
	}
	if len(tail) < recordHeaderSize || len(bytes.Trim(tail, "\x00")) == 0 {
		return true
	}
	kind, n := tail[0], binary.BigEndian.Uint32(tail[1:5])
	if (kind != recordBlock && kind != recordHead) || n > maxRecordSize {
		return false
	}
	return recordHeaderSize+int(n) >= len(tail)
}

func checksum(kind byte, payload []byte) uint32 {
	return crc32.Update(crc32.Update(0, crcTable, []byte{kind}), crcTable, payload)
}

// openJournal opens the journal at path for appending, creating it when it
// does not exist and cutting a torn tail at end (from scanJournal).
func openJournal(path string, end int64) (*journal, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	j := &journal{f: f}
	if err := j.prepare(end); err != nil {
		f.Close()
		return nil, err
	}
	return j, nil
}

func (j *journal) prepare(end int64) error {
	if end < int64(len(journalMagic)) {
		end = 0
	}
	if err := j.f.Truncate(end); err != nil {
		return err
	}
	if _, err := j.f.Seek(end, io.SeekStart); err != nil {
		return err
	}
	j.size = end
	if end == 0 {
		if _, err := j.f.Write([]byte(journalMagic)); err != nil {
			return err
		}
		j.size = int64(len(journalMagic))
	}
	return j.f.Sync()
}

// append writes one record and syncs it to disk.
func (j *journal) append(kind byte, payload []byte) error {
	buf := make([]byte, recordHeaderSize+len(payload))
	buf[0] = kind
	binary.BigEndian.PutUint32(buf[1:5], uint32(len(payload)))
	binary.BigEndian.PutUint32(buf[5:9], checksum(kind, payload))
	copy(buf[recordHeaderSize:], payload)
	if _, err := j.f.Write(buf); err != nil {
		return fmt.Errorf("write journal: %w", err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("sync journal: %w", err)
	}
	j.size += int64(len(buf))
	return nil
}

// appendHead records that the block with hash h became the head.
func (j *journal) appendHead(h common.Hash) error {
	return j.append(recordHead, h.Bytes())
}

func (j *journal) close() error {
	return j.f.Close()
}
