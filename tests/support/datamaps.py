"""The data map the tests share: two tables (``notes`` reached through its parent
``projects``) and one file store."""


def two_table_datamap(url: str, files: str, tenant_column: str = "org_id") -> str:
    """The data map's TOML for the database at ``url`` (``projects.<tenant_column>`` holds the
    tenant key) and the file store rooted at ``files``; either may be a ``${VAR}``."""
    return f"""
[databases.app]
url = "{url}"

[[tables]]
database = "app"
name = "projects"
tenant_column = "{tenant_column}"

[[tables]]
database = "app"
name = "notes"
parent = {{ table = "projects", column = "project_id", references = "id" }}

[[storage]]
url = "file://{files}/{{tenant_key}}/"
"""


#: The shared map with its locations from the environment (APP_DATABASE_URL, APP_FILES).
GOOD = two_table_datamap("${APP_DATABASE_URL}", "${APP_FILES}")
