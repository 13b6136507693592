llama-bench -m SmolLM2-135M-Instruct.Q4_1.gguf -p 64 -n 16 -r 2 -t 2 --repack 0 -o jsonl
