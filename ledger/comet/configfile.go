package comet

import (
	"fmt"
	"math"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	cfg "github.com/cometbft/cometbft/config"
	"github.com/pelletier/go-toml/v2"
)

// readConfigFile reads a CometBFT config.toml into c. Keys are matched to
// fields by their mapstructure tags, as cometbft's own command does with
// viper; keys that name no field are ignored (as viper ignores them), and
// fields the file does not mention keep their value in c.
func readConfigFile(path string, c *cfg.Config) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var m map[string]any
	if err := toml.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("parse %s: %w", path, err)
	}
	if err := setStruct(reflect.ValueOf(c).Elem(), m, ""); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// writeConfigFile writes c as a config.toml with CometBFT's template.
func writeConfigFile(path string, c *cfg.Config) error {
	// cfg.WriteConfigFile panics when it cannot write: check first.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	cfg.WriteConfigFile(path, c)
	return nil
}

var durationType = reflect.TypeOf(time.Duration(0))

func setStruct(v reflect.Value, m map[string]any, prefix string) error {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
		if opts == "squash" {
			if err := setStruct(v.Field(i), m, prefix); err != nil {
				return err
			}
			continue
		}
		if name == "" || name == "-" {
			continue
		}
		raw, ok := m[name]
		if !ok {
			continue
		}
		if err := setValue(v.Field(i), raw, prefix+name); err != nil {
			return err
		}
	}
	return nil
}

func setValue(v reflect.Value, raw any, key string) error {
	bad := func() error { return fmt.Errorf("%s: cannot use %T value %v", key, raw, raw) }
	if v.Type() == durationType {
		switch x := raw.(type) {
		case string:
			d, err := time.ParseDuration(x)
			if err != nil {
				return fmt.Errorf("%s: %w", key, err)
			}
			v.SetInt(int64(d))
		case int64:
			v.SetInt(x)
		default:
			return bad()
		}
		return nil
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.Type().Elem().Kind() != reflect.Struct {
			return bad()
		}
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		return setValue(v.Elem(), raw, key)
	case reflect.Struct:
		sub, ok := raw.(map[string]any)
		if !ok {
			return bad()
		}
		return setStruct(v, sub, key+".")
	case reflect.String:
		s, ok := raw.(string)
		if !ok {
			return bad()
		}
		v.SetString(s)
	case reflect.Bool:
		switch x := raw.(type) {
		case bool:
			v.SetBool(x)
		case string: // viper decodes weakly typed input: "true"
			b, err := strconv.ParseBool(x)
			if err != nil {
				return bad()
			}
			v.SetBool(b)
		default:
			return bad()
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := raw.(int64)
		if s, isString := raw.(string); isString { // the template quotes some numbers
			var err error
			n, err = strconv.ParseInt(s, 10, 64)
			ok = err == nil
		}
		if !ok || v.OverflowInt(n) {
			return bad()
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := raw.(int64)
		if s, isString := raw.(string); isString {
			var err error
			n, err = strconv.ParseInt(s, 10, 64)
			ok = err == nil
		}
		if !ok || n < 0 || v.OverflowUint(uint64(n)) {
			return bad()
		}
		v.SetUint(uint64(n))
	case reflect.Float32, reflect.Float64:
		switch x := raw.(type) {
		case float64:
			v.SetFloat(x)
		case int64:
			if math.Abs(float64(x)) > 1<<53 {
				return bad()
			}
			v.SetFloat(float64(x))
		case string:
			f, err := strconv.ParseFloat(x, 64)
			if err != nil {
				return bad()
			}
			v.SetFloat(f)
		default:
			return bad()
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() != reflect.String {
			return bad()
		}
		var out []string
		switch x := raw.(type) {
		case []any:
			out = make([]string, len(x))
			for i, e := range x {
				s, ok := e.(string)
				if !ok {
					return bad()
				}
				out[i] = s
			}
		case string: // viper accepts "a,b" for a list
			if x != "" {
				out = strings.Split(x, ",")
			}
		default:
			return bad()
		}
		v.Set(reflect.ValueOf(out))
	default:
		return bad()
	}
	return nil
}
