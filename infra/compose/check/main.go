// compose-check loads a compose file the way `docker compose config` does, with the
// library behind it (compose-go): interpolation from an env file, merges, anchors, and
// validation against the compose specification. It prints the resolved project as JSON,
// or the first error and exits 1.
//
//	go run . -f ../../../docker-compose.kafka.yml -env-file ../../../.env.example
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	file := flag.String("f", "docker-compose.kafka.yml", "the compose file")
	envFile := flag.String("env-file", ".env.example", "the variables it is interpolated with")
	flag.Parse()

	out, err := load(*file, *envFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
	os.Stdout.Write(append(out, '\n'))
}

func load(file, envFile string) ([]byte, error) {
	options, err := cli.NewProjectOptions([]string{file},
		cli.WithEnvFiles(envFile), cli.WithDotEnv, cli.WithOsEnv, cli.WithResolvedPaths(true))
	if err != nil {
		return nil, err
	}
	project, err := options.LoadProject(context.Background())
	if err != nil {
		return nil, err
	}
	return project.MarshalJSON()
}
