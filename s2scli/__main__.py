"""``python -m s2scli`` runs the ``s2s`` command (also under ``torchrun``)."""

from .cli import main

main()
