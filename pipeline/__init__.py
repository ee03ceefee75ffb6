"""The wirenews pipeline: its graph, options, command line and IO connectors."""
