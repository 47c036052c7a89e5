"""All Redis access of the session service: key names (keys.py), scripts, and one module per area.

Every public coroutine here is wrapped by ``guard`` (client.py), the one place where redis-py's
connection and timeout errors become ``Unavailable``.
"""
