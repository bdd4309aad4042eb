"""Alembic revisions, oldest first (loaded by Alembic from their files, never imported by ctsentinel)."""
