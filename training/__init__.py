"""LoRA and FTICL fine-tuning from YAML recipes (see the training issue; not built yet)."""
