"""The ``csbot`` command line: one group, subcommands in modules beside this one.

Heavy libraries (torch, transformers) are imported inside the commands, so ``csbot --help`` is fast.
Every :class:`csbot.errors.CsbotError` becomes one line on stderr and the error's exit code;
``--verbose`` shows the traceback too.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback

import click

from csbot import __version__
from csbot.errors import CsbotError

EXIT_UNEXPECTED = 70
EXIT_INTERRUPTED = 130


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="csbot")
@click.option("-v", "--verbose", is_flag=True, help="Show debug logs and full tracebacks on errors.")
@click.option("--home", type=click.Path(file_okay=False), default=None,
              help="Where models and logs go ({home} in the config; default: $CSBOT_HOME, the source checkout, "
                   "or the per-user data folder).")
@click.pass_context
def cli(ctx: click.Context, verbose: bool, home: str | None) -> None:
    """csbot: customer-service chat bots from your own support data."""
    from csbot.home import HOME_ENV

    ctx.ensure_object(dict)
    ctx.obj["verbose"] = verbose
    if home:
        os.environ[HOME_ENV] = os.path.abspath(os.path.expanduser(home))
    if not verbose:
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # read when transformers is imported
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("sentence_transformers", "faiss", "transformers", "urllib3", "filelock", "huggingface_hub", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.INFO if verbose else logging.ERROR)


def _register() -> None:
    from bot.cli import chat, data, evaluate, index, nlu, prepare, serve, test, train, transcripts

    cli.add_command(train.train_command)
    cli.add_command(evaluate.evaluate_group)
    cli.add_command(nlu.nlu_group)
    cli.add_command(data.data_group)
    cli.add_command(index.index_group)
    cli.add_command(chat.chat_command)
    cli.add_command(prepare.prepare_command)
    cli.add_command(serve.serve_command)
    cli.add_command(test.test_group)
    cli.add_command(transcripts.transcripts_group)
    from bot.cli.telegram import telegram_group
    cli.add_command(telegram_group)
    from bot.cli.models import models_group
    cli.add_command(models_group)
    from bot.cli.review import review_group
    cli.add_command(review_group)
    from bot.cli.retrain import retrain_command
    cli.add_command(retrain_command)
    from bot.cli.init import init_command
    cli.add_command(init_command)


_register()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``csbot`` console script; returns the exit code."""
    verbose = "-v" in (argv or sys.argv[1:]) or "--verbose" in (argv or sys.argv[1:])
    verbose = verbose or os.environ.get("CSBOT_VERBOSE") == "1"
    try:
        result = cli.main(args=argv, prog_name="csbot", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return EXIT_INTERRUPTED
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except CsbotError as exc:
        if verbose:
            traceback.print_exc()
        click.echo(f"error: {exc}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, not a traceback
        if verbose:
            traceback.print_exc()
        click.echo(
            f"error: unexpected {exc.__class__.__name__}: {exc} (run with --verbose for the traceback)", err=True
        )
        return EXIT_UNEXPECTED
    return result if isinstance(result, int) else 0


def run() -> None:
    sys.exit(main())
