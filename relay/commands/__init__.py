"""The `relay` subcommands, one module per area; relay.cli puts them together."""
