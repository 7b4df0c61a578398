"""The demo data: what the demo source contains (`plan`), the effects it plants (`truth`) and the
SQL that generates its rows (`generator`). Pure, no I/O: `resources/demo_source.py` writes it.
"""
