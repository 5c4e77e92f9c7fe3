"""Helpers of the service that are not HTTP handlers: tokens, sessions, providers, the relay, jobs."""
