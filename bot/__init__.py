"""The bot: dialogue, session state, channels and the ``csbot`` command line."""
