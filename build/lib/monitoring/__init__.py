"""Metric declarations, exporters, Prometheus config and rules, Grafana dashboards."""
