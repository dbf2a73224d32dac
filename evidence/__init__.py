"""finharness evidence: what lm-eval wrote, read and weighed (result files, trivial baselines,
measures, statistics, contamination, the typed records between packages). It runs no model."""
