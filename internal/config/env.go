package config

import (
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"time"
)

var errEOF = io.EOF

// applyEnv overrides fields from SLUICE_… variables named after the YAML
// path in upper case: SLUICE_DATABASE, SLUICE_ENGINE_BATCH_SIZE,
// SLUICE_CHAINS_0_UPSTREAMS_0_URL. An index one past the end of a list adds
// an element.
func applyEnv(c *Config, environ []string) error {
	vars := map[string]string{}
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if ok && strings.HasPrefix(k, "SLUICE_") {
			vars[k] = v
		}
	}
	if len(vars) == 0 {
		return nil
	}
	return walk(reflect.ValueOf(c).Elem(), "SLUICE", vars)
}

var durationType = reflect.TypeOf(time.Duration(0))

func walk(v reflect.Value, name string, vars map[string]string) error {
	switch {
	case v.Kind() == reflect.Struct:
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			tag := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]
			if t.Field(i).Tag.Get("yaml") == ",inline" { // its fields are the parent's
				if err := walk(v.Field(i), name, vars); err != nil {
					return err
				}
				continue
			}
			if tag == "" || tag == "-" {
				continue
			}
			if err := walk(v.Field(i), name+"_"+strings.ToUpper(tag), vars); err != nil {
				return err
			}
		}
	case v.Kind() == reflect.Slice:
		for i := 0; ; i++ {
			prefix := fmt.Sprintf("%s_%d", name, i)
			if i >= v.Len() {
				if !hasPrefix(vars, prefix+"_") && vars[prefix] == "" {
					return nil
				}
				v.Set(reflect.Append(v, reflect.Zero(v.Type().Elem())))
			}
			if err := walk(v.Index(i), prefix, vars); err != nil {
				return err
			}
		}
	default:
		s, ok := vars[name]
		if !ok {
			return nil
		}
		if err := setScalar(v, s); err != nil {
			return fmt.Errorf("config: $%s: %w", name, err)
		}
	}
	return nil
}

func hasPrefix(vars map[string]string, prefix string) bool {
	for k := range vars {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}

func setScalar(v reflect.Value, s string) error {
	if v.Kind() == reflect.Pointer {
		p := reflect.New(v.Type().Elem())
		if err := setScalar(p.Elem(), s); err != nil {
			return err
		}
		v.Set(p)
		return nil
	}
	if v.Type() == durationType {
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("%q is not a duration like 250ms", s)
		}
		v.SetInt(int64(d))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("%q is not true or false", s)
		}
		v.SetBool(b)
	case reflect.Float64:
		n, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", s)
		}
		v.SetFloat(n)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", s)
		}
		v.SetInt(n)
	case reflect.Uint8, reflect.Uint64:
		n, err := strconv.ParseUint(s, 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("%q is not a whole number that fits", s)
		}
		v.SetUint(n)
	default:
		return fmt.Errorf("cannot set a %s from the environment", v.Kind())
	}
	return nil
}
