"""The xpbase Discord bot (discord.py): slash commands, passive XP, announcements and role rewards.

``bot.launcher`` starts it (``xpbase bot``); ``bot.bot.XPBot`` is the bot;
``bot.cogs`` hold the commands and listeners; ``bot.rank_card`` draws /rank.
"""
