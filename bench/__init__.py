"""Benchmarks that print ratios against a reference (kubectl, Slack's limits, the timing model)."""
