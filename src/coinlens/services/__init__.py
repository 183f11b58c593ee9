"""Use-cases: the one layer that the API, web pages, CLI, MCP server and jobs call."""
