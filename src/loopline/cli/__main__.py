"""``python -m loopline.cli`` runs the CLI."""

from loopline.cli.main import main

main()
