"""The database: SQLAlchemy 2 async engine, declarative base and Alembic migrations."""
