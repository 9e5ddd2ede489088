"""Channels: how customers reach the bot (the terminal REPL here; webhook and chat platforms alongside)."""
