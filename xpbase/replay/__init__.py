"""Importers that replay real activity histories through the XP engine (``xpbase replay ...``)."""
