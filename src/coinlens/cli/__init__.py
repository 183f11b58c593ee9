"""The `coinlens` command line: a thin front end over services."""
