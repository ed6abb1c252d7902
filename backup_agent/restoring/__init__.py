"""The restore engine: a proven dump is executed by the agent itself, never by psql.

proof (read once, prove everything) -> executor (each statement the splitter judged, sent
alone over the extended protocol, in the session its route names) -> build (the one
pipeline `restore` and `verify --restore-test` share: roles, the database, the statements,
ANALYZE, ownership, event triggers last, the database's own properties).
"""
