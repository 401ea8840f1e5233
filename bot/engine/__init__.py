"""The migration engine: inventory, drain planning and execution (issue 5). No Slack, no sandbox:
it talks to the outside through bot.adapters and reports progress through event sinks."""
