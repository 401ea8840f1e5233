"""The chaos suite behind `make soak` (`python -m bench.soak`).

Each scenario runs the demo's whole 3-wave migration against the sandbox with `migratebot serve` as
real subprocesses configured from the environment, while the people of the story act through the
sandbox's Slack and something keeps breaking: kill -9 of the bot, PostgreSQL connections cut by a
TCP proxy, Kubernetes API errors and watch drops, Slack 429s and 5xx, two replicas behind one
request URL with the leader killed. Afterwards the ground truth is read back: every wave completed,
no PodDisruptionBudget violated, no Slack action done twice, the audit chain intact.

    proxies.py    the TCP proxy that cuts PostgreSQL connections; the round-robin HTTP proxy
    replica.py    one `migratebot serve` process: start, kill -9, stop
    world.py      sandbox + PagerDuty + database + the operator's environment for the bot
    people.py     the SRE, the team lead and on-call, acting through Slack and retrying as people do
    checks.py     what the run left behind: outcome, PDB violations, duplicates, audit, exclusivity
    scenarios.py  the scenarios and the chaos each one injects
"""
