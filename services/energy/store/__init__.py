"""All PostgreSQL access of the energy service (parameterised SQL, one module per aggregate).

Every store class is wrapped by the runtime's store guard: an unreachable database is UNAVAILABLE
with retry advice, whatever the statement.
"""

#: How the database is named in errors ("energy database unavailable").
STORE = "energy database"
