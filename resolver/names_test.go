package resolver

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestUnescapeTXT(t *testing.T) {
	tests := map[string]string{
		"plain":               "plain",
		`a\"b`:                `a"b`,
		`back\\slash`:         `back\slash`,
		`\195\169t\195\169`:   "été",
		`\000nul`:             "\x00nul",
		`\999`:                "999", // not a byte value: the backslash escapes "9"
		`trailing\`:           `trailing\`,
		`v=DKIM1\; k=rsa\; p`: "v=DKIM1; k=rsa; p",
	}
	for in, want := range tests {
		assert.Equal(t, want, unescapeTXT(in), in)
	}
}

func TestFinishMX(t *testing.T) {
	mx, null := finishMX([]MX{{"b", 20}, {"a", 10}, {"c", 10}})
	assert.False(t, null)
	assert.Equal(t, []MX{{"a", 10}, {"c", 10}, {"b", 20}}, mx)
	_, null = finishMX([]MX{{"", 0}})
	assert.True(t, null)
	mx, null = finishMX([]MX{{"", 0}, {"real", 10}})
	assert.False(t, null, "a null MX mixed with real ones is ignored")
	assert.Equal(t, []MX{{"real", 10}}, mx)
	mx, null = finishMX(nil)
	assert.False(t, null)
	assert.Empty(t, mx)
}
