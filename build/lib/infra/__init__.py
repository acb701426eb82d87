"""Runtime and command line: starts the local services and wires the pipeline stages together."""
