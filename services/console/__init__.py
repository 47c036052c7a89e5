"""The console: a web UI for game admins and building operators, in front of the gateway."""
