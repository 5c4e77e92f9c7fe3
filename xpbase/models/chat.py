"""The global chat (supabase/sql/75_notifications_chat.sql): a message as ``post_chat_message`` answers it.

``chat_history`` is read by supabase-js clients and the chat websocket reads
the table, so it has no model here (tests/xpbase/test_models.py, NOT_READ).
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from xpbase.models import Result


class ChatMessage(Result):
    """A posted message: its id (ascending), author, the trimmed body, and when it was posted (UTC)."""

    id: int
    profile_id: UUID
    author_name: str
    body: str
    created_at: datetime


RESULTS = {"post_chat_message": ChatMessage}
