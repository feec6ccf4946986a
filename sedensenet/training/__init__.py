"""Training: the train loop (single process or DDP), evaluation."""
