"""SQL that only PostgreSQL runs (functions, triggers); SQLite, the embedded default, skips it.

Django's migration loader ignores modules whose names start with an underscore.
"""

from django.db import migrations


def on_postgresql(forwards_sql: str, backwards_sql: str) -> migrations.RunPython:
    def forwards(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(forwards_sql)

    def backwards(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(backwards_sql)

    return migrations.RunPython(forwards, backwards)
