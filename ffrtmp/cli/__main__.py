"""``python -m ffrtmp.cli``: the CLI without its script; ``ffrtmp up`` runs its children so."""

from ffrtmp.cli import main

main()
