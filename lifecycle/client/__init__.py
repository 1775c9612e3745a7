"""The client layer: :class:`~lifecycle.client.lifecycle.LifecycleClient` and its feature
services."""
