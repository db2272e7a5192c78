package policy

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Limits of API key labels, which rules read as api_key_labels.
const (
	MaxLabels        = 20
	maxLabelKeyLen   = 63
	maxLabelValueLen = 200
)

// ValidateLabel checks one API key label: its name is 1-63 characters of
// a-z, 0-9, '_', '-' and '.', starting with a letter (so that a rule can
// read it as api_key_labels["name"] without surprises); its value is at
// most 200 printable characters. The error names both.
func ValidateLabel(name, value string) error {
	if name == "" || len(name) > maxLabelKeyLen || name[0] < 'a' || name[0] > 'z' ||
		strings.IndexFunc(name, func(c rune) bool {
			return !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.')
		}) >= 0 {
		return fmt.Errorf("label name %q must be 1-%d characters of a-z, 0-9, _, - and ., starting with a letter", clip(name), maxLabelKeyLen)
	}
	if !utf8.ValidString(value) || utf8.RuneCountInString(value) > maxLabelValueLen ||
		strings.ContainsFunc(value, func(c rune) bool { return c < ' ' || c == 0x7f }) {
		return fmt.Errorf("label %s: value %q must be at most %d printable characters", name, clip(value), maxLabelValueLen)
	}
	return nil
}

// ValidateLabels checks every label and their number.
func ValidateLabels(labels map[string]string) error {
	if len(labels) > MaxLabels {
		return fmt.Errorf("%d labels: at most %d", len(labels), MaxLabels)
	}
	for k, v := range labels {
		if err := ValidateLabel(k, v); err != nil {
			return err
		}
	}
	return nil
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
