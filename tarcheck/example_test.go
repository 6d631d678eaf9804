package tarcheck_test

import (
	"bytes"
	"context"
	"fmt"

	"github.com/fmtconv/fmtconv/internal/testimages"
	"github.com/fmtconv/fmtconv/tarcheck"
)

func ExampleScan() {
	layer := testimages.MustBuildTar([]testimages.Entry{
		testimages.Dir("etc/", 0o755),
		testimages.File("./etc/passwd", 0o644, testimages.String("root:x:0:0::/root:/bin/sh\n")),
		testimages.Symlink("etc/evil", "../../../etc/shadow"),
		testimages.File("etc/passwd", 0o600, testimages.String("second copy\n")),
	}, testimages.Ending{})

	res, err := tarcheck.Scan(context.Background(), bytes.NewReader(layer), tarcheck.Options{})
	if err != nil {
		panic(err) // reading failed; problems in the layer are findings
	}
	fmt.Println(res.Count, "entries,", res.Size, "bytes, complete:", res.Complete)
	for _, f := range res.Findings {
		fmt.Printf("%s %s %s: %s\n", f.Severity, f.Check, f.Path, f.Message)
	}
	// Output:
	// 4 entries, 4096 bytes, complete: true
	// error tar.link-escape etc/evil: the symlink target "../../../etc/shadow" leaves the root ("../../etc/shadow")
	// warning tar.duplicate-path etc/passwd: "etc/passwd" appears more than once (now a regular file, earlier a regular file)
}
