"""Formflow's pure core: form definitions, field types, tables, records.

Nothing in this package imports a web framework or commits a transaction;
callers own the transaction.
"""
