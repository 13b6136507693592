llama-bench -m gemma-3-270m-q4_k_m.gguf -p 64 -n 16 -r 2 -t 2 --repack 0 -o jsonl
