"""Indexes for the support console's name search: FTS5 trigrams (SQLite), pg_trgm (PostgreSQL)."""

from typing import Any

from tortoise import migrations
from tortoise.migrations import operations as ops

SQLITE = [
    # The FTS table keeps its own copy of each name; triggers keep it in step with
    # `account`, including deletion's wipe (which blanks the names).
    """CREATE VIRTUAL TABLE IF NOT EXISTS account_name_fts USING fts5(name, tokenize='trigram')""",
    """CREATE TRIGGER IF NOT EXISTS account_name_fts_ai AFTER INSERT ON account BEGIN
        INSERT INTO account_name_fts(rowid, name)
        VALUES (new.id, new.first_name || ' ' || new.last_name);
    END""",
    """CREATE TRIGGER IF NOT EXISTS account_name_fts_ad AFTER DELETE ON account BEGIN
        DELETE FROM account_name_fts WHERE rowid = old.id;
    END""",
    """CREATE TRIGGER IF NOT EXISTS account_name_fts_au
        AFTER UPDATE OF first_name, last_name ON account BEGIN
        UPDATE account_name_fts SET name = new.first_name || ' ' || new.last_name
        WHERE rowid = new.id;
    END""",
    """INSERT INTO account_name_fts(rowid, name)
        SELECT id, first_name || ' ' || last_name FROM account""",
]
POSTGRES = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    """CREATE INDEX IF NOT EXISTS account_name_trgm ON account
        USING gin ((first_name || ' ' || last_name) gin_trgm_ops)""",
]


async def forward(apps: Any, schema_editor: Any) -> None:
    client = schema_editor.client
    statements = SQLITE if client.capabilities.dialect == "sqlite" else POSTGRES
    for statement in statements:
        await client.execute_script(statement)


class Migration(migrations.Migration):
    dependencies = [("models", "0001_initial")]

    operations = [ops.RunPython(forward)]
