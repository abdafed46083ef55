"""The console search finds an email by any part of it from an index on SQLite too, and both
trigram tables there forget what is deleted (PostgreSQL's pg_trgm indexes, made by 0002 and
0005, already do).

FTS5's `secure-delete` (SQLite 3.44 or newer: core/sqlite.py) removes a deleted or changed
row's trigrams from the index segments themselves. Without it they stayed until a merge, so
the name index made by 0002 is switched over and then rewritten once ('optimize'), which drops
whatever earlier deletions left behind."""

from typing import Any

from tortoise import migrations
from tortoise.migrations import operations as ops

SQLITE = [
    "CREATE VIRTUAL TABLE IF NOT EXISTS account_email_fts USING fts5(email, tokenize='trigram')",
    "INSERT INTO account_email_fts(account_email_fts, rank) VALUES ('secure-delete', 1)",
    # Deletion wipes the address (sets it NULL) before the row goes: the index follows both.
    """CREATE TRIGGER IF NOT EXISTS account_email_fts_ai AFTER INSERT ON account
        WHEN new.email IS NOT NULL BEGIN
        INSERT INTO account_email_fts(rowid, email) VALUES (new.id, new.email);
    END""",
    """CREATE TRIGGER IF NOT EXISTS account_email_fts_ad AFTER DELETE ON account BEGIN
        DELETE FROM account_email_fts WHERE rowid = old.id;
    END""",
    """CREATE TRIGGER IF NOT EXISTS account_email_fts_au AFTER UPDATE OF email ON account BEGIN
        DELETE FROM account_email_fts WHERE rowid = old.id;
        INSERT INTO account_email_fts(rowid, email)
        SELECT new.id, new.email WHERE new.email IS NOT NULL;
    END""",
    """INSERT INTO account_email_fts(rowid, email)
        SELECT id, email FROM account WHERE email IS NOT NULL""",
    "INSERT INTO account_name_fts(account_name_fts, rank) VALUES ('secure-delete', 1)",
    "INSERT INTO account_name_fts(account_name_fts) VALUES ('optimize')",
]


async def forward(apps: Any, schema_editor: Any) -> None:
    client = schema_editor.client
    if client.capabilities.dialect != "sqlite":
        return
    for statement in SQLITE:
        await client.execute_script(statement)


class Migration(migrations.Migration):
    dependencies = [("models", "0006_billing")]

    operations = [ops.RunPython(forward)]
