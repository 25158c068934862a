package memstore_test

import (
	"testing"

	"github.com/mailblocks/mailblocks/store/memstore"
	"github.com/mailblocks/mailblocks/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Harness {
		return storetest.Harness{Store: memstore.New(memstore.Options{
			DefaultDomain: storetest.DefaultDomain,
			HashPassword:  memstore.InsecureFastHash,
		})}
	})
}
