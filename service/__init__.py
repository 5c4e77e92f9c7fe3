"""The xpbase HTTP service (Quart): health, the caller's profile, and later OAuth, payments and websockets."""
