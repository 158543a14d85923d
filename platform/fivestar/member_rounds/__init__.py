"""Member rating rounds (党员星级评定): 个人自评 → 党群联评 → 支部审评 → 公示 → 上报.

`models` holds the tables, `workflow` the states and transitions (the one place they are written
down), `scoring` the set-based scoring of every member, `services` the operations people take.
"""
