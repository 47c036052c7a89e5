"""All Redis access of the session service: key names (keys.py), scripts, and one module per area.

Every store class here is wrapped by the runtime's store guard (``services.runtime.store_errors``),
so redis-py's connection and timeout errors become ``Unavailable`` in one place for every service.
"""
