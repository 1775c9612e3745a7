"""A data map of two tables (``notes`` reached through its parent ``projects``) and one file
store, as the data-map tests read it."""

GOOD = """
[databases.app]
url = "${APP_DATABASE_URL}"

[[tables]]
database = "app"
name = "projects"
tenant_column = "org_id"

[[tables]]
database = "app"
name = "notes"
parent = { table = "projects", column = "project_id", references = "id" }

[[storage]]
url = "file://${APP_FILES}/{tenant_key}/"
"""
