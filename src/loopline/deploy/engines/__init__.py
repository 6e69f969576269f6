"""Engines run replica and router processes: ``local`` (detached processes)."""
