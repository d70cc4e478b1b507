"""Models: the offline tiny Qwen3-VL and serving with vLLM."""
