"""`python -m fivestar` is the `fivestar` command."""

from fivestar.cli import main

main()
