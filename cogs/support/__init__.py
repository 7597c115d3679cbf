"""Discord-side plumbing shared by the cogs: retrying Discord's transient failures, budgeting status edits.

It lives under cogs/ because it imports discord, and the project rule is that only bot/app.py, bot/cli.py and
cogs/ may: the layers under bot/ stay testable without Discord.
"""
