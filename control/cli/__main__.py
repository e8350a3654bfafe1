"""Entry point of ``python -m control.cli``."""

from control.cli.commands import main

main()
