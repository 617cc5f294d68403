"""Benchmarks that print numbers (never timed asserts): ``aegis.bench.sim`` measures closed-loop simulation throughput."""
