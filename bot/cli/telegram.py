"""``csbot telegram ...``: set up the Telegram channel (``set-webhook`` registers the URL and the secret)."""

from __future__ import annotations

import click

from bot.cli.options import config_option


@click.group("telegram")
def telegram_group() -> None:
    """Set up the Telegram channel."""


@telegram_group.command("set-webhook")
@click.option("--url", required=True,
              help="The public HTTPS address of the bot's Telegram route (https://bot.example.com/webhooks/telegram).")
@config_option
def set_webhook_command(url: str, config_path: str | None) -> None:
    """Tell Telegram to POST updates to URL with the webhook secret (the Bot API's setWebhook).

    The bot token and the secret come from the environment variables named by channels.telegram in
    the config (default: TELEGRAM_BOT_TOKEN and TELEGRAM_SECRET_TOKEN).
    """
    import asyncio

    from bot.channels.telegram import TelegramBotApi
    from bot.channels.webhook import secret_from_env

    config = telegram_config(config_path)
    token = secret_from_env(config.bot_token_env, "channels.telegram.bot_token_env")
    secret = secret_from_env(config.secret_token_env, "channels.telegram.secret_token_env")
    api = TelegramBotApi.from_config(config, token or "")

    async def register() -> None:
        try:
            await api.set_webhook(url, secret or "")
        finally:
            await api.close()

    asyncio.run(register())
    click.echo(f"Telegram will send updates to {url}")


def telegram_config(config_path: str | None):
    """The validated ``channels.telegram`` section of the configuration (defaults when it has none)."""
    from bot.channels.telegram import TelegramConfig
    from csbot.config import validated
    from csbot.settings import load_config

    config = load_config(config_path)
    where = str(config.source) if config.source is not None else "built-in defaults"
    return validated(TelegramConfig, config.channels.get("telegram") or {}, where, prefix="channels.telegram")


__all__ = ["set_webhook_command", "telegram_config", "telegram_group"]
