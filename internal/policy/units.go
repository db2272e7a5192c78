package policy

import (
	"fmt"
	"math/big"
	"reflect"
	"sync"
	"sync/atomic"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
)

// unitsType is the CEL type of an exact amount in base units. CEL's int and
// uint hold 64 bits (18.4 ETH in wei), so amounts get a type of their own,
// compared exactly with each other and with ints.
var unitsType = cel.OpaqueType("sluice.Units")

// units is an amount of base units (never negative in facts).
type units struct{ v *big.Int }

func (u units) ConvertToNative(t reflect.Type) (any, error) {
	if t == reflect.TypeOf(&big.Int{}) {
		return new(big.Int).Set(u.v), nil
	}
	if t.Kind() == reflect.String {
		return u.v.String(), nil
	}
	return nil, fmt.Errorf("units: cannot convert to %v", t)
}

func (u units) ConvertToType(t ref.Type) ref.Val {
	switch t {
	case types.StringType:
		return types.String(u.v.String())
	case unitsType:
		return u
	}
	return types.NewErr("units: cannot convert to %s", t.TypeName())
}

func (u units) Equal(o ref.Val) ref.Val {
	if c, ok := cmpUnits(u, o); ok {
		return types.Bool(c == 0)
	}
	return types.False
}

func (u units) Type() ref.Type { return unitsRuntime }
func (u units) Value() any     { return u.v }

// cmpUnits compares u with a units or an int value.
func cmpUnits(u units, o ref.Val) (int, bool) {
	switch o := o.(type) {
	case units:
		return u.v.Cmp(o.v), true
	case types.Int:
		return u.v.Cmp(big.NewInt(int64(o))), true
	case types.Uint:
		return u.v.Cmp(new(big.Int).SetUint64(uint64(o))), true
	}
	return 0, false
}

// parsedUnits caches units("…") of the literals conditions compare with,
// which would otherwise be parsed at every evaluation; the bound keeps
// units() of dynamic strings (metadata) from growing it without end.
// Cached values are never modified: every operation makes a new big.Int.
var (
	parsedUnits sync.Map // string → units
	parsedCount atomic.Int64
)

const maxParsedUnits = 4096

// unitsRuntime is the type units values report at run time: CEL's
// standard comparisons and + dispatch on its traits.
var unitsRuntime = types.NewTypeValue("sluice.Units", traits.ComparerType, traits.AdderType)

// Compare implements traits.Comparer for <, <=, >, >=.
func (u units) Compare(o ref.Val) ref.Val {
	c, ok := cmpUnits(u, o)
	if !ok {
		return types.MaybeNoSuchOverloadErr(o)
	}
	return types.Int(c)
}

// Add implements traits.Adder for units + units.
func (u units) Add(o ref.Val) ref.Val {
	ou, ok := o.(units)
	if !ok {
		return types.MaybeNoSuchOverloadErr(o)
	}
	return units{new(big.Int).Add(u.v, ou.v)}
}

// unitsOptions declares units(), string(units), the comparisons and the
// sum of units; the standard library's bindings run them through Compare
// and Add.
func unitsOptions() []cel.EnvOption {
	cmp := func(name, id string) cel.EnvOption {
		return cel.Function(name,
			cel.Overload(id+"_units_units", []*cel.Type{unitsType, unitsType}, cel.BoolType),
			cel.Overload(id+"_units_int", []*cel.Type{unitsType, cel.IntType}, cel.BoolType),
			cel.Overload(id+"_units_uint", []*cel.Type{unitsType, cel.UintType}, cel.BoolType))
	}
	parse := func(v ref.Val) ref.Val {
		str := string(v.(types.String))
		if u, ok := parsedUnits.Load(str); ok {
			return u.(units)
		}
		n, ok := new(big.Int).SetString(str, 10)
		if !ok || n.Sign() < 0 {
			return types.NewErr("units(%q): want base units as decimal digits", str)
		}
		if parsedCount.Add(1) <= maxParsedUnits {
			parsedUnits.Store(str, units{n})
		}
		return units{n}
	}
	fromInt := func(v ref.Val) ref.Val {
		if v.(types.Int) < 0 {
			return types.NewErr("units(%d): amounts are not negative", int64(v.(types.Int)))
		}
		return units{big.NewInt(int64(v.(types.Int)))}
	}
	return []cel.EnvOption{
		cel.Function("units",
			cel.Overload("units_string", []*cel.Type{cel.StringType}, unitsType, cel.UnaryBinding(parse)),
			cel.Overload("units_int", []*cel.Type{cel.IntType}, unitsType, cel.UnaryBinding(fromInt))),
		cel.Function("string", cel.Overload("string_units", []*cel.Type{unitsType}, cel.StringType,
			cel.UnaryBinding(func(v ref.Val) ref.Val { return types.String(v.(units).v.String()) }))),
		cel.Function("_+_", cel.Overload("add_units_units", []*cel.Type{unitsType, unitsType}, unitsType)),
		cmp("_<_", "less"),
		cmp("_<=_", "less_equals"),
		cmp("_>_", "greater"),
		cmp("_>=_", "greater_equals"),
	}
}
