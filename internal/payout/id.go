package payout

import (
	"crypto/rand"
	"encoding/binary"
	"sync"
	"time"
)

// crockford is the base32 alphabet of ULIDs: sortable, no I, L, O, U.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// IDGenerator makes time-ordered, unique identifiers: a prefix, then 26
// characters (48 bits of milliseconds, 80 bits of randomness incremented
// within one millisecond), so that string order is creation order.
type IDGenerator struct {
	mu     sync.Mutex
	lastMS uint64
	hi     uint16 // upper 16 of the 80 random bits
	lo     uint64 // lower 64
}

// New returns a new identifier with the given prefix, e.g. "po_".
func (g *IDGenerator) New(prefix string, now time.Time) string {
	g.mu.Lock()
	ms := uint64(now.UnixMilli())
	if ms <= g.lastMS {
		ms = g.lastMS
		g.lo++
		if g.lo == 0 {
			g.hi++
		}
	} else {
		var b [10]byte
		_, _ = rand.Read(b[:])
		g.hi = binary.BigEndian.Uint16(b[:2]) & 0x7fff // headroom so increments never wrap
		g.lo = binary.BigEndian.Uint64(b[2:])
		g.lastMS = ms
	}
	hi, lo := g.hi, g.lo
	g.mu.Unlock()

	var raw [16]byte
	binary.BigEndian.PutUint64(raw[0:8], ms<<16|uint64(hi))
	binary.BigEndian.PutUint64(raw[8:16], lo)
	return prefix + encode128(raw)
}

// encode128 writes 128 bits (of which the top 48 are ms, using 130 bits of
// room) as 26 Crockford base32 characters, most significant first.
func encode128(b [16]byte) string {
	var out [26]byte
	hi := binary.BigEndian.Uint64(b[0:8])
	lo := binary.BigEndian.Uint64(b[8:16])
	for i := 25; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out[:])
}

// DefaultIDs is the process-wide generator.
var DefaultIDs = &IDGenerator{}
