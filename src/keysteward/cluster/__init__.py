"""Running several server processes on one PostgreSQL database."""
