package store_test

import (
	"fmt"

	"github.com/mailblocks/mailblocks/store"
)

func ExampleDirectoryData_Lookup() {
	var d store.DirectoryData
	_, _ = d.AddUser("bob@example.org", "", store.Quota{}, nil)
	_ = d.SetAlias("postmaster@example.org", "bob@example.org")
	_ = d.SetList("team@example.org", []string{"postmaster@example.org", "carol@remote.test"})

	folders := map[string]bool{"Lists": true}
	hasFolder := func(user, folder string) bool { return folders[folder] }
	for _, addr := range []string{"Bob+Lists@Example.ORG", "team@example.org", "nobody@example.org", "bob@elsewhere.test"} {
		lk, err := d.Lookup(addr, hasFolder)
		if err != nil {
			panic(err)
		}
		fmt.Printf("%s → %v %v %v folder=%q\n", addr, lk.Kind, lk.Users, lk.Remote, lk.Folder)
	}
	// Output:
	// Bob+Lists@Example.ORG → local [bob@example.org] [] folder="Lists"
	// team@example.org → local [bob@example.org] [carol@remote.test] folder=""
	// nobody@example.org → unknown [] [] folder=""
	// bob@elsewhere.test → not-our-domain [] [] folder=""
}

func ExampleHashPassword() {
	hash, err := store.HashPassword("correct horse")
	if err != nil {
		panic(err)
	}
	fmt.Println(hash[:31])
	fmt.Println(store.CheckPassword(hash, "correct horse"), store.CheckPassword(hash, "wrong"))
	// Output:
	// $argon2id$v=19$m=19456,t=2,p=1$
	// true false
}
