"""What the experiment scripts are made of, so that each script reads as its story: the study
skeleton every script repeats (`study`), and each script's machinery (rows, stages, tables,
results files), one idea per module."""
