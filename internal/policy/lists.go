package policy

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sluicepay/sluice/internal/payout"
)

// ListFile is what ReadList found in a file.
type ListFile struct {
	Entries []payout.ListEntry // unique, by address
	// SDN: the file was OFAC's SDN advanced XML, so its addresses are
	// sanctioned.
	SDN bool
	// Skipped counts digital currency addresses that are not EVM addresses
	// (e.g. XBT), which no EVM payout can reach.
	Skipped int
}

// sdnFeaturePrefix starts the name of the SDN features that hold
// addresses, e.g. "Digital Currency Address - ETH".
const sdnFeaturePrefix = "Digital Currency Address - "

// ReadList reads OFAC's SDN advanced XML (its Digital Currency Address
// features whose value is an EVM address) or a plain list: one address a
// line, "#" starting a comment.
func ReadList(r io.Reader) (*ListFile, error) {
	br := bufio.NewReader(r)
	for {
		b, err := br.Peek(1)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return &ListFile{}, nil
			}
			return nil, err
		}
		switch b[0] {
		case ' ', '\t', '\r', '\n', 0xef, 0xbb, 0xbf: // whitespace, UTF-8 BOM
			_, _ = br.ReadByte()
			continue
		case '<':
			return readSDN(br)
		}
		return readPlain(br)
	}
}

func readPlain(r io.Reader) (*ListFile, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 1<<20)
	var entries []payout.ListEntry
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if !isEVMAddress(line) {
			return nil, fmt.Errorf("line %d: %q is not a 0x-prefixed 20-byte hex address", n, truncate(line, 64))
		}
		entries = append(entries, payout.ListEntry{Address: common.HexToAddress(line), Note: fmt.Sprintf("line %d", n)})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return &ListFile{Entries: unique(entries)}, nil
}

func isEVMAddress(s string) bool {
	return len(s) == 42 && (strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X")) && common.IsHexAddress(s)
}

// sdnFeature is a party's feature as the XML holds it.
type sdnFeature struct {
	typeID, value, party string
}

// readSDN streams the XML: feature types name which features are
// addresses; the parties' features carry the values.
func readSDN(r io.Reader) (*ListFile, error) {
	dec := xml.NewDecoder(r)
	addrTypes := map[string]bool{}
	var (
		feats    []sdnFeature
		party    string
		cur      *sdnFeature
		inDetail bool
		inType   string // the FeatureType ID being read
		text     strings.Builder
		sawRoot  bool
	)
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("sdn xml: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "Sanctions":
				sawRoot = true
			case "FeatureType":
				inType, text = attr(t, "ID"), strings.Builder{}
			case "DistinctParty":
				party = attr(t, "FixedRef")
			case "Feature":
				cur = &sdnFeature{typeID: attr(t, "FeatureTypeID"), party: party}
			case "VersionDetail":
				inDetail, text = cur != nil, strings.Builder{}
			}
		case xml.CharData:
			if inType != "" || inDetail {
				if text.Len() < 512 {
					text.Write(t)
				}
			}
		case xml.EndElement:
			switch t.Name.Local {
			case "FeatureType":
				if inType != "" && strings.HasPrefix(strings.TrimSpace(text.String()), sdnFeaturePrefix) {
					addrTypes[inType] = true
				}
				inType = ""
			case "VersionDetail":
				if inDetail && cur.value == "" {
					cur.value = strings.TrimSpace(text.String())
				}
				inDetail = false
			case "Feature":
				if cur != nil {
					feats = append(feats, *cur)
				}
				cur = nil
			}
		}
	}
	if !sawRoot {
		return nil, errors.New("sdn xml: no <Sanctions> element; is this OFAC's SDN advanced XML?")
	}
	out := &ListFile{SDN: true}
	for _, f := range feats {
		if !addrTypes[f.typeID] || f.value == "" {
			continue
		}
		if !isEVMAddress(f.value) {
			out.Skipped++
			continue
		}
		out.Entries = append(out.Entries, payout.ListEntry{Address: common.HexToAddress(f.value), Note: "sdn " + f.party})
	}
	out.Entries = unique(out.Entries)
	return out, nil
}

func attr(t xml.StartElement, name string) string {
	for _, a := range t.Attr {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// unique keeps the first entry of each address, sorted by address.
func unique(es []payout.ListEntry) []payout.ListEntry {
	sort.SliceStable(es, func(i, j int) bool { return bytes.Compare(es[i].Address[:], es[j].Address[:]) < 0 })
	out := es[:0]
	for _, e := range es {
		if len(out) == 0 || e.Address != out[len(out)-1].Address {
			out = append(out, e)
		}
	}
	return out
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
