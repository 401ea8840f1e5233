"""Slack's Web API: the only place slack_sdk clients are built, and Slack's errors translated.

    client = build_client(token, base_url=settings.slack_api_url)
    directory = SlackDirectory(client)      # bot.services.roles.UsergroupDirectory

Retries (429 after Retry-After, 5xx, dropped connections) and timeouts are decided here, once.
"""

from bot.adapters.slack.client import DEFAULT_TIMEOUT, SLACK_API_URL, build_client, translate
from bot.adapters.slack.directory import SlackDirectory

__all__ = ["DEFAULT_TIMEOUT", "SLACK_API_URL", "SlackDirectory", "build_client", "translate"]
