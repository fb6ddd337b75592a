"""A migration operation that makes a foreign key cascade in the database itself (PostgreSQL).

Django emulates ON DELETE CASCADE in Python; the spike's schema asks for it in the database, so that a row removed by
SQL (an operator's psql session, a retention job) takes its dependents with it too.
"""

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps


def _sql(table: str, column: str, ref_table: str, on_delete: str) -> str:
    # Identifiers come from migration code, never from input.
    return f"""
DO $$ DECLARE r record; BEGIN
  FOR r IN SELECT c.conname FROM pg_constraint c
           JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
           WHERE c.contype = 'f' AND c.conrelid = '{table}'::regclass AND a.attname = '{column}' LOOP
    EXECUTE format('ALTER TABLE {table} DROP CONSTRAINT %I', r.conname);
  END LOOP;
  ALTER TABLE {table} ADD CONSTRAINT {table}_{column}_fk FOREIGN KEY ({column})
    REFERENCES {ref_table}(id) ON DELETE {on_delete} DEFERRABLE INITIALLY DEFERRED;
END $$;"""  # noqa: S608


def cascade_in_database(table: str, column: str, ref_table: str) -> migrations.RunPython:
    def forward(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(_sql(table, column, ref_table, "CASCADE"), params=None)

    def backward(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(_sql(table, column, ref_table, "NO ACTION"), params=None)

    return migrations.RunPython(forward, backward, elidable=False)
