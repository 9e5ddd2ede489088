"""The default configuration (``default.yaml``) and the demo shop (``demo/``), shipped as package data.

``csbot chat`` with no ``--config`` runs this bot; :func:`csbot.home.configs_dir` finds this folder
whether csbot runs from a source checkout or from an installed wheel.
"""
