"""Where csbot finds its packaged configuration and where it keeps runtime files (models, logs).

Runtime files go to the *home*: ``--home`` or ``$CSBOT_HOME`` when given; the source checkout when csbot
runs from one (so ``models/`` and ``logs/`` sit beside the code, as a developer expects); otherwise the
per-user data directory (``~/.local/share/csbot`` on Linux), never into site-packages.
"""

from __future__ import annotations

import os
from pathlib import Path

#: Environment variable naming the home folder (``csbot --home DIR`` sets it).
HOME_ENV = "CSBOT_HOME"


def configs_dir() -> Path:
    """The folder of the packaged ``configs`` (default config and demo), checkout or site-packages."""
    import configs

    return Path(configs.__file__).resolve().parent


def default_config_path() -> Path:
    """The packaged ``default.yaml``."""
    return configs_dir() / "default.yaml"


def source_checkout() -> Path | None:
    """The repository root when csbot runs from a source checkout (an editable install), else None."""
    root = configs_dir().parent
    installed = {"site-packages", "dist-packages"} & set(root.parts)
    if not installed and (root / "pyproject.toml").is_file() and (root / "bot" / "cli").is_dir():
        return root
    return None


def runtime_home(override: str | Path | None = None) -> Path:
    """Where models and logs go: ``override``, ``$CSBOT_HOME``, the checkout, or the user data folder."""
    chosen = override or os.environ.get(HOME_ENV)
    if chosen:
        return Path(os.path.expanduser(str(chosen))).resolve()
    checkout = source_checkout()
    if checkout is not None:
        return checkout
    import platformdirs

    return Path(platformdirs.user_data_dir("csbot", appauthor=False))


__all__ = ["HOME_ENV", "configs_dir", "default_config_path", "runtime_home", "source_checkout"]
