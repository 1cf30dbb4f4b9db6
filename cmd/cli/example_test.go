package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"strconv"

	"github.com/qlaunch/qlaunch/cmd/cli"
	"github.com/qlaunch/qlaunch/kernels"
)

// A program of one's own registers its kernels beside the stock ones and
// hands the registry to cli.Main (here only built: Main reads os.Args).
func ExampleRegistry() {
	wordcount := func(_ context.Context, _ kernels.Runtime, _ []string, payload []byte) ([]byte, error) {
		return []byte(strconv.Itoa(len(bytes.Fields(payload)))), nil
	}
	reg, err := cli.Registry(kernels.Kernel{Name: "wordcount", Func: wordcount, Retryable: true,
		Usage: "[N]", Doc: "count the words of the payload"})
	if err != nil {
		fmt.Println(err)
		return
	}
	k, _ := reg.Lookup("wordcount")
	fmt.Println(k.Synopsis())
	_, err = cli.Registry(kernels.Kernel{Name: "echo", Func: wordcount})
	fmt.Println(err)
	// A main ends with os.Exit(cli.Main(reg)).

	// Output:
	// wordcount [N]
	// kernels: kernel "echo" registered twice
}
