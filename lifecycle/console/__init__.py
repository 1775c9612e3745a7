"""The tenant console: server-rendered pages at ``/console`` for the people who run tenants.

It reads and acts only through :class:`~lifecycle.client.lifecycle.LifecycleClient`, with the
named tokens and roles of the API (:mod:`lifecycle.api.auth`), kept in a session cookie.
"""
