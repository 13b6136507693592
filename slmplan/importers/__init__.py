"""Readers for benchmark results produced by other tools (llama.cpp's llama-bench)."""
