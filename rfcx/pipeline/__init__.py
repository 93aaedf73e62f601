"""The workflow glue and the run's environment: stages, code inputs, config, logs, GPU slots, plots and backends."""
