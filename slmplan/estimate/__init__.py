"""Pure estimators: memory, speed and energy from (model facts, quant, device, settings)."""
