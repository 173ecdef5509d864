"""Speed and memory benchmarks, each measured side by side with its baseline (not tests)."""
