"""Replicas sharing one database: leadership, and what passes between them."""
