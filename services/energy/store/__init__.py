"""All PostgreSQL access of the energy service (parameterised SQL, one module per aggregate)."""
