"""Benchmarks: answer evaluation against a running server, labelled retrieval set, MSGABench."""
