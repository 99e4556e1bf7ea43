"""The experiments: scripts that tell one story each (`python experiments/<name>.py --help`) and
the report helpers they share. Installed with the project, so scripts and tests import
`experiments.<module>` without editing `sys.path`."""
