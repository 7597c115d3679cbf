"""SQLite storage: the connection, numbered migrations and the job store."""
