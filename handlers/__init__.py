"""Slack listeners (thin: parse, authorize, call one service, render), the /migrate grammar and Block Kit views."""
