"""Training: data importers, the fine-tuning loop, evaluation and reports."""
