"""Benchmarks behind `shopstream bench`: measured live, never asserted in unit tests."""
