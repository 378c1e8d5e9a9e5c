"""``python -m longwriter`` runs the CLI."""

from .cli import main

main()
