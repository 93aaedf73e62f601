"""The workflow glue and the run's environment: stages, code inputs, config, job logs and threads, GPU slots, plots
and backends."""
