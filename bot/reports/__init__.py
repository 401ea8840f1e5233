"""Per-wave reports: readiness before a wave, AL2-vs-Bottlerocket security, results after it.

facts.py gathers through the adapters (the package's only I/O); compatibility, readiness, security
and results are pure over those facts; render.py prints them as text, JSON or CSV.
"""
