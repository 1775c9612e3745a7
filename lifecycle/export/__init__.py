"""GDPR data export (Art. 15 right of access, Art. 20 data portability): typed models, the
JSON Lines codec, the export storage with signed links, and the export records.

Submodules are imported explicitly; ``models`` is importable from workflow code (no I/O).
"""
