"""The canary: timed checks of each wave's bake, alert episodes that pause the migration, the APScheduler
clock that drives them, and the Lease that decides which replica runs it. Never imports Slack."""
