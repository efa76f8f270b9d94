package store

import (
	"math"
	"strconv"
	"strings"
)

// PyRepr formats f as Python 3's repr(float) (and str(float)) does: the
// shortest text that reads back as f, in fixed notation with at least one
// decimal digit when the decimal exponent is in [-4, 16), else in exponent
// notation ("1e-05", "1.5e+300"); "inf", "-inf", "nan".
func PyRepr(f float64) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	var buf [32]byte
	e := strconv.AppendFloat(buf[:0], f, 'e', -1, 64) // -d.ddde±XX
	neg := e[0] == '-'
	if neg {
		e = e[1:]
	}
	epos := strings.IndexByte(string(e), 'e')
	mant, expText := e[:epos], e[epos+1:]
	exp, _ := strconv.Atoi(string(expText))
	digits := make([]byte, 0, len(mant))
	for _, c := range mant {
		if c != '.' {
			digits = append(digits, c)
		}
	}
	decpt := exp + 1
	var out []byte
	if neg {
		out = append(out, '-')
	}
	switch {
	case decpt > -4 && decpt <= 16:
		switch {
		case decpt <= 0:
			out = append(out, '0', '.')
			for i := 0; i < -decpt; i++ {
				out = append(out, '0')
			}
			out = append(out, digits...)
		case decpt >= len(digits):
			out = append(out, digits...)
			for i := len(digits); i < decpt; i++ {
				out = append(out, '0')
			}
			out = append(out, '.', '0')
		default:
			out = append(out, digits[:decpt]...)
			out = append(out, '.')
			out = append(out, digits[decpt:]...)
		}
	default:
		out = append(out, digits[0])
		if len(digits) > 1 {
			out = append(out, '.')
			out = append(out, digits[1:]...)
		}
		out = append(out, 'e')
		if exp < 0 {
			out = append(out, '-')
			exp = -exp
		} else {
			out = append(out, '+')
		}
		if exp < 10 {
			out = append(out, '0')
		}
		out = strconv.AppendInt(out, int64(exp), 10)
	}
	return string(out)
}

// FloatToGoString formats f as the newest prometheus_client's
// floatToGoString does for sample values and le/quantile labels: "+Inf",
// "-Inf", "NaN", else PyRepr, except that positive numbers with more than
// six digits before the dot switch to an exponent form of at least two
// digits ("1e+06", "1.5e+07", "1e+10", "1.23456789012e+12"), as since
// prometheus_client 0.26. FloatToGoStringFor gives older clients' spelling.
func FloatToGoString(f float64) string { return FloatToGoStringFor(f, true) }

// FloatToGoStringFor is FloatToGoString with the exponent spelling of a
// chosen client: padded (0.26 and later) writes the exponent with at least
// two digits ("1e+10"); otherwise a literal 0 precedes it ("1e+06" but
// "1e+010", "1.23456789012e+012"), as prometheus_client 0.25 and earlier
// write exponents from 10 to 15.
func FloatToGoStringFor(f float64, padded bool) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	}
	s := PyRepr(f)
	dot := strings.IndexByte(s, '.')
	if f > 0 && dot > 6 {
		mantissa := strings.TrimRight(s[:1]+"."+s[1:dot]+s[dot+1:], "0.")
		exp := dot - 1
		if padded && exp >= 10 {
			return mantissa + "e+" + strconv.Itoa(exp)
		}
		return mantissa + "e+0" + strconv.Itoa(exp)
	}
	return s
}

// ParsePyFloat parses a float as Python's float() accepts the texts that
// Python writes: "1.0", "1e-05", "inf", "-inf", "nan" (any case), with
// surrounding white space allowed.
func ParsePyFloat(s string) (float64, error) {
	if plainDecimal(s) {
		return strconv.ParseFloat(s, 64)
	}
	t := strings.TrimSpace(s)
	switch strings.ToLower(strings.TrimPrefix(strings.TrimPrefix(t, "+"), "-")) {
	case "inf", "infinity":
		if strings.HasPrefix(t, "-") {
			return math.Inf(-1), nil
		}
		return math.Inf(1), nil
	case "nan":
		return math.NaN(), nil
	}
	if strings.ContainsAny(t, "xXpP") || strings.Contains(t, "_") {
		return 0, &strconv.NumError{Func: "ParsePyFloat", Num: s, Err: strconv.ErrSyntax}
	}
	return strconv.ParseFloat(t, 64)
}

// plainDecimal reports whether s is made of digits, '.', 'e', 'E', '+'
// and '-' only and starts with a digit or sign: text both Python and
// strconv read the same way (or both reject), so the checks for
// spellings Python refuses can be skipped.
func plainDecimal(s string) bool {
	if s == "" || !(s[0] >= '0' && s[0] <= '9' || s[0] == '-' || s[0] == '+') {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9', c == '.', c == 'e', c == 'E', c == '+', c == '-':
		default:
			return false
		}
	}
	return true
}
