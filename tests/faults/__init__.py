"""Fault and bad-input tests: crashes, network cuts, dying consumers, fuzzing, security, load.

Each test asserts its figures and records them with ``record_property`` (see them
with ``pytest tests/faults -o junit_family=xunit1 --junitxml=faults.xml``); the
longer variants are marked ``slow`` (``make test-slow``).
"""
