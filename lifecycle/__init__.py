"""Tenant Lifecycle: the domain, importable from workflows (states, plans, models, errors).

Modules that do I/O (``db``, ``repository``, ``client``, ``cli``) are imported explicitly by
activities, the API and the CLI; workflow modules import only ``states``, ``plans``,
``models`` and ``errors``.
"""
