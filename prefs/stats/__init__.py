"""Pure statistics over lists of plain records: no Django, no database.

Each module holds one topic (win rates, agreement, bias, rankings, reviewer flags); the
selectors in `prefs.selectors.stats` read the database and feed them.
"""
