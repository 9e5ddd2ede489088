"""``python -m bot.cli`` runs the ``csbot`` command."""

from bot.cli import run

run()
