"""The only code that speaks SQL: schema, migrations, and the SQLite and PostgreSQL backends."""

from .database import Database, Session, open_database

__all__ = ["Database", "Session", "open_database"]
