"""Slack listeners (thin: parse, authorize, call a service, render), the /migrate grammar, Block Kit."""
