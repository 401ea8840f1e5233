"""Use cases: what people and the bot do to a migration, over the domain, storage and adapters."""
