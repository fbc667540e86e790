"""The live dashboard (`eventflow dashboard`, also served by `eventflow up`): Dash and plotly over
the aggregate and analytics tables, refreshed in the browser every few seconds.

queries.py reads the tables (SQL in sql/dashboard), figures.py draws them, app.py lays out the
page and its refresh, server.py serves it and runs it as a child of `eventflow up`.
"""
