package mailblocks_test

import (
	"errors"
	"fmt"

	"github.com/mailblocks/mailblocks"
)

func ExampleCanonicalAddress() {
	for _, a := range []string{"Jörg@Bücher.DE", `"John Doe"@Example.COM`, "a..b@example.com"} {
		c, err := mailblocks.CanonicalAddress(a)
		if err != nil {
			fmt.Println("invalid:", errors.Is(err, mailblocks.ErrBadAddress))
			continue
		}
		fmt.Println(c, mailblocks.NeedsSMTPUTF8(c))
	}
	// Output:
	// Jörg@xn--bcher-kva.de true
	// "John Doe"@example.com false
	// invalid: true
}

func ExampleNormalizeDomain() {
	a, _ := mailblocks.NormalizeDomain("Bücher.DE")
	u, _ := mailblocks.DomainToUnicode(a)
	lit, _ := mailblocks.NormalizeDomain("[IPv6:2001:DB8:0::1]")
	fmt.Println(a, u, lit)
	// Output: xn--bcher-kva.de bücher.de [IPv6:2001:db8::1]
}

func ExampleAsError() {
	err := fmt.Errorf("store: deliver: %w", errors.New("disk full at /var/mail"))
	se := mailblocks.AsError(err)
	fmt.Println(se.Code, se.Enhanced, se.Message, se.Temporary())
	// Output: 451 4.3.0 Temporary local problem, please try again later true
}
