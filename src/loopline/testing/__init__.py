"""Shipped fakes and conformance suites, one per contract (install ``loopline[dev]``).

Library code never imports this package (checked by import-linter).
"""
