"""The bot's cogs, loaded by ``XPBot.setup_hook``: members, admin, passive (XP), rewards, deliveries, ..."""
