"""The experiments: scripts that tell one story each (`python experiments/<name>.py --help`),
the report helpers they share (`report`), and what they are made of (`lib`: the study skeleton
every script repeats, each script's rows, stages, tables and results files). Installed with the
project, so scripts and tests import `experiments.<module>` without editing `sys.path`."""
