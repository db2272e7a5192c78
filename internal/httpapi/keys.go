package httpapi

import "encoding/json"

// checkKeys walks the top-level keys of body, a JSON object that
// encoding/json has already found valid, and refuses a key that is not one
// of fieldNames exactly (encoding/json would have matched "CHAIN" to chain)
// or that appears twice (JSON parsers disagree on which one wins, and this
// one decides where money goes). It does not allocate for the usual body.
func checkKeys(body []byte) error {
	var seen [len(fieldNames)]bool
	i := skipSpace(body, 0) + 1 // past '{'
	for {
		i = skipSpace(body, i)
		if i >= len(body) || body[i] == '}' {
			return nil
		}
		if body[i] == ',' {
			i++
			continue
		}
		end := stringEnd(body, i)
		if end < 0 {
			return nil // cannot happen in valid JSON
		}
		k := fieldIndex(body[i:end])
		if k < 0 {
			return unknownField(keyText(body[i:end]))
		}
		if seen[k] {
			return duplicateField(fieldNames[k])
		}
		seen[k] = true
		i = skipSpace(body, end) + 1 // past ':'
		if i = valueEnd(body, skipSpace(body, i)); i < 0 {
			return nil
		}
	}
}

// fieldIndex finds a quoted key among fieldNames, or -1.
func fieldIndex(quoted []byte) int {
	key := quoted[1 : len(quoted)-1]
	for k, name := range fieldNames {
		if string(key) == name {
			return k
		}
	}
	if name := keyText(quoted); name != string(key) { // escaped, e.g. "\u0063hain"
		for k, n := range fieldNames {
			if name == n {
				return k
			}
		}
	}
	return -1
}

// keyText unquotes a JSON string.
func keyText(quoted []byte) string {
	var s string
	if err := json.Unmarshal(quoted, &s); err != nil {
		return string(quoted)
	}
	return s
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

// stringEnd returns the index just past the JSON string starting at i.
func stringEnd(b []byte, i int) int {
	if i >= len(b) || b[i] != '"' {
		return -1
	}
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return -1
}

// valueEnd returns the index just past the JSON value starting at i.
func valueEnd(b []byte, i int) int {
	depth := 0
	for i < len(b) {
		switch c := b[i]; {
		case c == '"':
			if i = stringEnd(b, i); i < 0 {
				return -1
			}
		case c == '{' || c == '[':
			depth++
			i++
		case c == '}' || c == ']':
			if depth == 0 {
				return i
			}
			depth--
			i++
		case c == ',' && depth == 0:
			return i
		default:
			i++
		}
		if depth == 0 && i < len(b) && (b[i] == ',' || b[i] == '}') {
			return i
		}
	}
	return -1
}
