"""After the rating: each branch's rectification plan (整改提升计划) in the programme its level calls for,
and the committee's acceptance review (考核验收) of it at year end."""
