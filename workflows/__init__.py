"""Lifecycle workflows: deterministic code only, one module per operation.

Workflows import ``lifecycle`` models and activity *references*; every side effect lives in
an activity (``activities/``).
"""
