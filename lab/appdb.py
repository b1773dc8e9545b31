"""The lab app's own table in a system's app.db, shared by app.py (which runs with the machine's Python
inside lab hosts and imports this file as a sibling) and the seeder (which creates the table when it
writes app.db, so a starting app changes nothing on disk: a data path's mtimes stay the scenario's).
"""

SCHEMA = """CREATE TABLE IF NOT EXISTS api_records (
    client TEXT NOT NULL,
    seq INTEGER NOT NULL,
    value TEXT NOT NULL,
    created TEXT NOT NULL,
    PRIMARY KEY (client, seq)
)"""
