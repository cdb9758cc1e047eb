"""The pytest glue: the plugin's hooks, options, session, workers and xdist scheduling."""
