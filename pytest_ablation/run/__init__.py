"""Running a case: generating videos, caching them, scoring them, on the worker's devices."""
