"""Modes wire the same pipeline stages to different sources and sinks.

One module per subcommand; each has ``add_parser(subparsers)`` and ``run(args)``.
"""
