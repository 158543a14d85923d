"""Branch rating rounds (党支部星级评定): 荐星 → 议星 (anonymous ballot) → 定星 → 亮星, and the
quarterly small review (一季一小评).

`models` holds the tables, `workflow` the states and transitions (the one place they are written
down), `core` what every part shares, `opening` the set-based opening of a year's round.
"""
