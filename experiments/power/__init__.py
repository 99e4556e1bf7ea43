"""The power study's machinery, one idea a module, for `experiments/power_study.py`.

`schedule_sets` (the named sets `--schedules` accepts), `variants` (`--variant` specs into
benchmark configurations), `analysis` (the runs into power.json: schedule means, two-way ANOVA,
pairs against the best), `markdown` (power.md) and `plot` (power.png). The runs themselves are
`controllers.static_study`'s, the statistics `controllers.paired_stats`'.
"""
