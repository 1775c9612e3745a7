"""HTTP API routers (FastAPI), one module per resource; assembled by ``starter_api.py``."""
