"""Renderings for people: the CLI's console output (Slack's Block Kit views live in handlers/)."""
