"""``python -m flowplane``: the CLI, for when the console script is not on PATH (workers launch runs this way)."""

from flowplane.cli.main import main

main()
