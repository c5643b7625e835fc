"""Training: corpora, batching, the training loop, evaluation and fine-tuning (``python -m training``)."""
