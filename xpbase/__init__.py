"""xpbase: the shared core of the service, the bot and the command line.

Settings, the embedded Postgres, the migrations runner, database access with
PostgREST-style roles, and the translation of the engine's SQLSTATEs.
"""

__version__ = "0.1.0"
