"""The ``loopline`` command line: kubectl-style verbs, rich output for people, ``--json`` for
machines. One module per command group; ``main.py`` assembles them."""
