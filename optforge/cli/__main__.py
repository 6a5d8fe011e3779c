"""``python -m optforge.cli`` runs the same CLI as the ``optforge`` script."""

from optforge.cli import main

main()
