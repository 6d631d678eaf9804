// Command genimages writes the deterministic test images of
// internal/testimages into a directory:
//
//	genimages DIR
//
// and prints each image's name, containers/image reference and
// description, one image per line, tab-separated.
package main

import (
	"fmt"
	"os"

	"github.com/fmtconv/fmtconv/internal/testimages"
)

func main() {
	if len(os.Args) != 2 || os.Args[1] == "" || os.Args[1][0] == '-' {
		fmt.Fprintln(os.Stderr, "usage: genimages DIR")
		os.Exit(2)
	}
	images, err := testimages.Generate(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "genimages:", err)
		os.Exit(1)
	}
	for _, img := range images {
		fmt.Printf("%s\t%s\t%s\n", img.Name, img.Ref, img.Description)
	}
}
