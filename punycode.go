package mailblocks

import (
	"errors"
	"strings"
	"unicode/utf8"
)

// Punycode (RFC 3492) is the encoding of IDNA A-labels (RFC 5891 4.4):
// "bücher" is "bcher-kva", carried in DNS as "xn--bcher-kva".

// RFC 3492 5: parameter values for Punycode.
const (
	punyBase        = 36
	punyTMin        = 1
	punyTMax        = 26
	punySkew        = 38
	punyDamp        = 700
	punyInitialBias = 72
	punyInitialN    = 128
	// punyMaxInput bounds the label length handled; DNS labels are at most
	// 63 octets, and the bound keeps the arithmetic far from overflow.
	punyMaxInput = 1024
)

var errPunycode = errors.New("mailblocks: invalid punycode")

// punyAdapt is the bias adaptation function of RFC 3492 6.1.
func punyAdapt(delta, numPoints int, first bool) int {
	if first {
		delta /= punyDamp
	} else {
		delta /= 2
	}
	delta += delta / numPoints
	k := 0
	for delta > ((punyBase-punyTMin)*punyTMax)/2 {
		delta /= punyBase - punyTMin
		k += punyBase
	}
	return k + (punyBase-punyTMin+1)*delta/(delta+punySkew)
}

func punyDigit(d int) byte {
	if d < 26 {
		return byte('a' + d)
	}
	return byte('0' + d - 26)
}

func punyValue(c byte) (int, bool) {
	switch {
	case c >= '0' && c <= '9':
		return int(c-'0') + 26, true
	case c >= 'a' && c <= 'z':
		return int(c - 'a'), true
	case c >= 'A' && c <= 'Z':
		return int(c - 'A'), true
	}
	return 0, false
}

func punyThreshold(k, bias int) int {
	switch {
	case k <= bias:
		return punyTMin
	case k >= bias+punyTMax:
		return punyTMax
	}
	return k - bias
}

// punyEncode encodes s (valid UTF-8) per RFC 3492 6.3.
func punyEncode(s string) (string, error) {
	if !utf8.ValidString(s) || len(s) > punyMaxInput {
		return "", errPunycode
	}
	input := []rune(s)
	var out strings.Builder
	for _, r := range input {
		if r < 0x80 {
			out.WriteByte(byte(r))
		}
	}
	b := out.Len()
	h := b
	if b > 0 {
		out.WriteByte('-')
	}
	n, delta, bias := punyInitialN, 0, punyInitialBias
	for h < len(input) {
		// The next code point to insert is the smallest one >= n.
		m := int(utf8.MaxRune) + 1
		for _, r := range input {
			if int(r) >= n && int(r) < m {
				m = int(r)
			}
		}
		delta += (m - n) * (h + 1)
		n = m
		for _, r := range input {
			if int(r) < n {
				delta++
			}
			if int(r) != n {
				continue
			}
			q := delta
			for k := punyBase; ; k += punyBase {
				t := punyThreshold(k, bias)
				if q < t {
					break
				}
				out.WriteByte(punyDigit(t + (q-t)%(punyBase-t)))
				q = (q - t) / (punyBase - t)
			}
			out.WriteByte(punyDigit(q))
			bias = punyAdapt(delta, h+1, h == b)
			delta = 0
			h++
		}
		delta++
		n++
	}
	return out.String(), nil
}

// punyDecode decodes s per RFC 3492 6.2.
func punyDecode(s string) (string, error) {
	if len(s) > punyMaxInput {
		return "", errPunycode
	}
	var output []rune
	basic := strings.LastIndexByte(s, '-')
	if basic > 0 {
		for i := 0; i < basic; i++ {
			if s[i] >= 0x80 {
				return "", errPunycode
			}
			output = append(output, rune(s[i]))
		}
	}
	rest := s
	if basic >= 0 {
		rest = s[basic+1:]
	}
	n, i, bias := punyInitialN, 0, punyInitialBias
	for pos := 0; pos < len(rest); {
		oldi, w := i, 1
		for k := punyBase; ; k += punyBase {
			if pos >= len(rest) {
				return "", errPunycode
			}
			digit, ok := punyValue(rest[pos])
			pos++
			if !ok {
				return "", errPunycode
			}
			// Overflow checks of RFC 3492 6.2, against a bound far below
			// the int range.
			if digit > (1<<30-i)/w {
				return "", errPunycode
			}
			i += digit * w
			t := punyThreshold(k, bias)
			if digit < t {
				break
			}
			if w > (1<<30)/(punyBase-t) {
				return "", errPunycode
			}
			w *= punyBase - t
		}
		bias = punyAdapt(i-oldi, len(output)+1, oldi == 0)
		n += i / (len(output) + 1)
		if n > utf8.MaxRune || n < punyInitialN || (n >= 0xD800 && n <= 0xDFFF) {
			return "", errPunycode
		}
		i %= len(output) + 1
		output = append(output, 0)
		copy(output[i+1:], output[i:])
		output[i] = rune(n)
		i++
	}
	return string(output), nil
}
