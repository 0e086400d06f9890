"""What Sara earns, net of what she costs, against the holdout group (SPEC §13, §15).

`figures` asks the database for the tallies (one query, grouped by day, template, step and
share), `stats` turns tallies into rates and intervals, `views` shows them.
"""
