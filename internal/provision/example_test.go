package provision_test

import (
	"fmt"

	"github.com/scimflow/scimflow/internal/provision"
)

func ExampleFilter() {
	fmt.Println(provision.Filter([]provision.Match{
		{Attr: "userName", Value: `jdoe" or userName pr or "`},
		{Attr: "externalId", Value: "E-42"},
	}))
	// Output: userName eq "jdoe\" or userName pr or \"" and externalId eq "E-42"
}

func ExampleResourcePath() {
	id := provision.ContainerPermissionID("Finance Safe", "jdoe@example.com")
	fmt.Println(provision.ResourcePath(provision.ResourceContainerPermissions, id))
	// Output: ContainerPermissions/Finance%20Safe:jdoe@example.com
}
